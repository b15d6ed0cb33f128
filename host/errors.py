"""Domain errors: failures that are not bugs in motocoach.

Every user-facing failure (bad input file, device not answering, refused update)
raises a subclass of :class:`MotoCoachError`. The CLI catches the base class once,
prints the message (which says what to do next) and exits with status 2.
Bugs are left to raise ordinary exceptions with a traceback.
"""

from __future__ import annotations


class MotoCoachError(Exception):
    """Base class for expected failures; the message must tell the user what to do."""

    exit_code = 2


class SchemaError(MotoCoachError):
    """Telemetry or action data that does not fit the feature schema."""


class ConfigError(MotoCoachError):
    """A bad option, config file or run folder."""


class TrackError(MotoCoachError):
    """A track CSV that cannot be used (open loop, NaN, too few points, self-intersecting)."""


class DatasetError(MotoCoachError):
    """A Minari dataset that is missing or does not match the schema."""


class QuantizationError(MotoCoachError):
    """A stage of export / conversion / checking failed; the message names the stage."""


class CodegenError(MotoCoachError):
    """A model the C generator cannot compile (unsupported ops, wrong shapes, corrupt file)."""


class ProtocolError(MotoCoachError):
    """A frame that cannot be decoded (bad COBS, CRC, version, length)."""


class DeviceError(MotoCoachError):
    """The device did not answer, answered with an error, or is in the wrong state."""


class BundleError(MotoCoachError):
    """A bundle that is unsigned, tampered, or incompatible with the unit."""


class ToolError(MotoCoachError):
    """An external tool (compiler, QEMU, esptool, pio) is missing or failed."""


class RideLogError(MotoCoachError):
    """A ride log (RaceChrono, AiM or expert-data CSV) that cannot be imported; names the line and column."""
