"""Python codec for the wire protocol: frames (COBS + CRC) and payloads, from :mod:`.spec`.

A frame is ``header | payload | crc16`` (see :mod:`motocoach.protocol.spec`), COBS-encoded
(the ``cobs`` package) and terminated by one ``0x00``. CRC-16/CCITT-FALSE is
``binascii.crc_hqx(data, 0xFFFF)``, stored little-endian.

Decoding errors are :class:`~motocoach.errors.ProtocolError` subclasses in two families:

* :class:`FramingError` (bad COBS, truncated, oversized, length mismatch, bad CRC): the bytes
  cannot be trusted at all; a receiver drops them silently and counts them.
* :class:`FrameContentError` (wrong version, unknown type, wrong payload length): the frame
  arrived intact, so the error carries the decoded :attr:`~FrameContentError.frame` and the
  ACK :attr:`~FrameContentError.status` the device answers with.

>>> from motocoach.protocol.spec import MsgType
>>> wire = encode_frame(MsgType.HELLO, 7, pack(MsgType.HELLO, proto_min=2, proto_max=2))
>>> wire.hex()
'0402010706020202199b00'
>>> f = decode_frame(wire[:-1])
>>> (f.type.name, f.seq, unpack(f.type, f.payload))
('HELLO', 7, {'proto_min': 2, 'proto_max': 2})
>>> d = FrameDecoder()
>>> [fr.seq for fr in d.feed(b"garbage\\x00" + wire + wire)]
[7, 7]
>>> dict(d.errors)
{'bad_cobs': 1}
"""

from __future__ import annotations

import binascii
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from cobs import cobs

from motocoach.errors import ProtocolError
from motocoach.protocol import spec
from motocoach.protocol.spec import MsgType, Status

DELIMITER = b"\x00"
_HEADER = struct.Struct(spec.HEADER_FORMAT)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0).

    >>> hex(crc16(b"123456789"))
    '0x29b1'
    """
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``type`` is a :class:`MsgType` when known, else the raw int."""

    version: int
    type: MsgType | int
    seq: int
    payload: bytes
    received_at: float = field(default=0.0, compare=False)  #: perf_counter() stamp set by a reader


# ---- errors -------------------------------------------------------------------------------

class FramingError(ProtocolError):
    """Bytes that are not a trustworthy frame. Receivers drop them silently and count them."""

    code = "framing"


class CobsError(FramingError):
    code = "bad_cobs"


class TruncatedFrameError(FramingError):
    code = "truncated"


class OversizedFrameError(FramingError):
    code = "oversized"


class LengthMismatchError(FramingError):
    """More bytes than the header's payload_len declares."""

    code = "length_mismatch"


class CrcError(FramingError):
    code = "bad_crc"


class FrameContentError(ProtocolError):
    """An intact frame (CRC ok) the receiver cannot act on; the device answers ACK ``status``."""

    code = "content"
    status = Status.OK

    def __init__(self, message: str, frame: Frame) -> None:
        super().__init__(message)
        self.frame = frame


class VersionError(FrameContentError):
    code = "bad_version"
    status = Status.BAD_VERSION


class UnknownTypeError(FrameContentError):
    code = "unknown_type"
    status = Status.UNKNOWN_TYPE


class PayloadLengthError(FrameContentError):
    code = "bad_length"
    status = Status.BAD_LENGTH


#: error code (as used in golden_frames.json) -> class
ERROR_CLASSES: dict[str, type[ProtocolError]] = {
    c.code: c for c in (CobsError, TruncatedFrameError, OversizedFrameError, LengthMismatchError,
                        CrcError, VersionError, UnknownTypeError, PayloadLengthError)}


# ---- frames -------------------------------------------------------------------------------

def build_raw(version: int, msg_type: int, seq: int, payload: bytes,
              payload_len: int | None = None, crc: int | None = None) -> bytes:
    """Unencoded frame bytes; ``payload_len``/``crc`` overrides exist to forge bad frames in tests."""
    n = len(payload) if payload_len is None else payload_len
    body = _HEADER.pack(version, int(msg_type), seq & 0xFFFF, n) + payload
    return body + struct.pack("<H", crc16(body) if crc is None else crc)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"",
                 version: int = spec.PROTOCOL_VERSION) -> bytes:
    """Frame, COBS-encode and delimit one message; ``seq`` wraps at 16 bits.

    >>> encode_frame(MsgType.STATUS_REQ, 1).hex()
    '04020301010363f900'
    """
    if len(payload) > spec.MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={spec.MAX_PAYLOAD}; "
                            "split it (model data goes in MODEL_CHUNKs)")
    if not (0 <= version <= 0xFF and 0 <= int(msg_type) <= 0xFF):
        raise ProtocolError(f"version {version} / type {int(msg_type)} must fit in one byte")
    return cobs.encode(build_raw(version, msg_type, seq, payload)) + DELIMITER


def decode_frame(encoded: bytes, *, check_version: bool = True) -> Frame:
    """Decode one COBS-encoded frame (without its 0x00 delimiter) and validate it.

    Checks, in this order (the C codec uses the same order): encoded size, COBS, minimum
    size, header payload_len against MAX_PAYLOAD and the bytes present, CRC, then version
    (skipped with ``check_version=False``), type, and payload length for the type.

    Raises a :class:`FramingError` or :class:`FrameContentError` subclass.
    """
    if len(encoded) > spec.MAX_ENCODED:
        raise OversizedFrameError(f"{len(encoded)} encoded bytes > MAX_ENCODED={spec.MAX_ENCODED}")
    if not encoded:
        raise TruncatedFrameError("empty frame")
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError as e:
        raise CobsError(f"bad COBS: {e}") from None
    min_size = spec.HEADER_SIZE + spec.CRC_SIZE
    if len(raw) < min_size:
        raise TruncatedFrameError(f"{len(raw)} bytes < minimum frame of {min_size}")
    version, msg_type, seq, payload_len = _HEADER.unpack_from(raw)
    if payload_len > spec.MAX_PAYLOAD:
        raise OversizedFrameError(f"payload_len {payload_len} > MAX_PAYLOAD={spec.MAX_PAYLOAD}")
    expected = min_size + payload_len
    if len(raw) < expected:
        raise TruncatedFrameError(f"{len(raw)} bytes, header says {expected}")
    if len(raw) > expected:
        raise LengthMismatchError(f"{len(raw)} bytes, header says {expected}")
    (crc,) = struct.unpack_from("<H", raw, expected - spec.CRC_SIZE)
    if crc != crc16(raw[:-spec.CRC_SIZE]):
        raise CrcError(f"CRC 0x{crc:04x} != computed 0x{crc16(raw[:-spec.CRC_SIZE]):04x}")
    try:
        typ: MsgType | int = MsgType(msg_type)
    except ValueError:
        typ = msg_type
    frame = Frame(version, typ, seq, raw[spec.HEADER_SIZE:expected - spec.CRC_SIZE])
    if check_version and not spec.PROTOCOL_MIN <= version <= spec.PROTOCOL_MAX:
        raise VersionError(f"version {version} outside [{spec.PROTOCOL_MIN}, {spec.PROTOCOL_MAX}]", frame)
    if not isinstance(typ, MsgType):
        raise UnknownTypeError(f"unknown message type 0x{msg_type:02x}", frame)
    # a newer peer may append fields (payloads only grow): accept and ignore the extra bytes.
    # HELLO is the exception: like the header, its 2 bytes are frozen in every version.
    check_payload_length(typ, len(frame.payload), frame,
                         allow_longer=version > spec.PROTOCOL_MAX and typ is not MsgType.HELLO)
    return frame


def check_payload_length(msg_type: MsgType, n: int, frame: Frame | None = None, *,
                         allow_longer: bool = False) -> None:
    """Raise :class:`PayloadLengthError` unless ``n`` is a valid payload size for the type."""
    m = spec.messages()[msg_type]
    max_tail = _max_tail(m)
    if allow_longer and m.tail is None:
        max_tail = spec.MAX_PAYLOAD - m.fixed_size
    if not m.fixed_size <= n <= m.fixed_size + max_tail:
        want = f"{m.fixed_size}" if not max_tail else f"{m.fixed_size + (1 if m.tail == 'data' else 0)}.." \
                                                        f"{m.fixed_size + max_tail}"
        raise PayloadLengthError(f"{msg_type.name} payload is {n} bytes, expected {want}",
                                 frame or Frame(spec.PROTOCOL_VERSION, msg_type, 0, b""))
    if m.tail == "data" and n == m.fixed_size:  # an empty chunk is a protocol error, not a no-op
        raise PayloadLengthError(f"{msg_type.name} carries no data",
                                 frame or Frame(spec.PROTOCOL_VERSION, msg_type, 0, b""))


def _max_tail(m: spec.Message) -> int:
    if m.tail is None:
        return 0
    return spec.MAX_CHUNK if m.tail == "data" else spec.MAX_LOG_TEXT


class FrameDecoder:
    """Stream decoder: feed any bytes, get valid frames; garbage is skipped and counted.

    Resynchronises on every 0x00: whatever precedes a delimiter is one candidate frame.
    Bytes past MAX_ENCODED without a delimiter are discarded (one ``oversized`` error).
    ``errors`` counts error codes; ``last_error`` keeps the latest exception.
    With ``check_version=False`` frames of any version are yielded (the caller decides).
    ``on_error`` is called with every error (e.g. to log it).
    """

    def __init__(self, *, check_version: bool = True,
                 on_error: Callable[[ProtocolError], None] | None = None) -> None:
        self.on_error = on_error
        self._buf = bytearray()
        self._overflow = False
        self.check_version = check_version
        self.errors: Counter[str] = Counter()
        self.last_error: ProtocolError | None = None
        self.rejected: list[FrameContentError] = []  #: intact frames refused (last 16)

    def feed(self, data: bytes) -> Iterator[Frame]:
        for chunk in _split_keep(data):
            if chunk == DELIMITER:
                frame = self._finish()
                if frame is not None:
                    yield frame
                continue
            if self._overflow:
                continue
            self._buf += chunk
            if len(self._buf) > spec.MAX_ENCODED:
                self._error(OversizedFrameError(f"more than {spec.MAX_ENCODED} bytes without a delimiter"))
                self._buf.clear()
                self._overflow = True

    def _finish(self) -> Frame | None:
        data, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        if overflow or not data:  # empty frames (0x00 0x00) are idle fill, not errors
            return None
        try:
            return decode_frame(data, check_version=self.check_version)
        except FrameContentError as e:
            self.rejected = (self.rejected + [e])[-16:]
            self._error(e)
        except ProtocolError as e:
            self._error(e)
        return None

    def _error(self, e: ProtocolError) -> None:
        self.errors[getattr(e, "code", "framing")] += 1
        self.last_error = e
        if self.on_error is not None:
            self.on_error(e)


def _split_keep(data: bytes) -> Iterator[bytes]:
    start = 0
    while True:
        i = data.find(0, start)
        if i < 0:
            if start < len(data):
                yield data[start:]
            return
        if i > start:
            yield data[start:i]
        yield DELIMITER
        start = i + 1


# ---- payloads -----------------------------------------------------------------------------

def pack(msg_type: MsgType | int, **fields: Any) -> bytes:
    """Build a payload from named fields (every fixed field required; the tail is optional).

    TELEMETRY also accepts ``values=`` (a float sequence in schema order).
    Byte-string fields accept ``bytes`` or ``str`` (UTF-8) and are NUL padded.

    >>> pack(MsgType.ACK, request_type=2, status=4, value=0).hex()
    '020400000000'
    """
    m = spec.messages()[MsgType(msg_type)]
    if m.type is MsgType.TELEMETRY and "values" in fields:
        values = list(fields.pop("values"))
        if len(values) != len(m.fields) or fields:
            raise ProtocolError(f"TELEMETRY needs exactly {len(m.fields)} values in schema order")
        fields = {f.name: v for f, v in zip(m.fields, values)}
    names = [f.name for f in m.fields]
    extra = set(fields) - set(names) - ({m.tail} if m.tail else set())
    missing = [n for n in names if n not in fields]
    if extra or missing:
        raise ProtocolError(f"{m.type.name}: unknown fields {sorted(extra)}, missing {missing}")
    args = []
    for f in m.fields:
        v = fields[f.name]
        if f.fmt.endswith("s"):
            b = v.encode() if isinstance(v, str) else bytes(v)
            if len(b) > f.size:
                raise ProtocolError(f"{m.type.name}.{f.name}: {len(b)} bytes > {f.size}")
            v = b
        args.append(v)
    try:
        out = struct.pack(m.fixed_format, *args)
    except struct.error as e:
        raise ProtocolError(f"{m.type.name}: a field does not fit its type ({e})") from None
    if m.tail:
        tail = fields.get(m.tail, b"")
        out += tail.encode() if isinstance(tail, str) else bytes(tail)
    check_payload_length(m.type, len(out))
    return out


def unpack(msg_type: MsgType | int, payload: bytes) -> dict[str, Any]:
    """Parse a payload into named fields (``Ns`` fields stay bytes, the tail is bytes)."""
    m = spec.messages()[MsgType(msg_type)]
    check_payload_length(m.type, len(payload))
    out = dict(zip((f.name for f in m.fields), struct.unpack_from(m.fixed_format, payload)))
    if m.tail:
        out[m.tail] = bytes(payload[m.fixed_size:])
    return out


def pack_telemetry(values: Sequence[float]) -> bytes:
    """TELEMETRY payload from floats in schema order (NaN/inf are packed as-is on purpose)."""
    return pack(MsgType.TELEMETRY, values=[float(v) for v in values])


def unpack_telemetry(payload: bytes) -> list[float]:
    """TELEMETRY payload -> float32 values in schema order."""
    return list(unpack(MsgType.TELEMETRY, payload).values())


def text(field: bytes) -> str:
    """A NUL-padded id field as text (``b"esp32dev\\0..."`` -> ``"esp32dev"``)."""
    return field.split(b"\0", 1)[0].decode("utf-8", "replace")


def is_finite_telemetry(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)
