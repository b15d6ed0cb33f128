"""Serial link to a unit: framed requests matched to replies by the echoed sequence number.

:class:`SerialLink` owns one pyserial port and a reader thread that decodes frames as they
arrive (resyncing after garbage, see :class:`~motocoach.protocol.codec.FrameDecoder`) and
timestamps them. A request waits for the reply that echoes its ``seq``; unsolicited device
messages (FAULT, or a LOG nobody asked for) go to :attr:`SerialLink.unsolicited`; anything
else (unknown kinds, late or unmatched replies) is logged, counted and ignored.

It works the same on a SIL or QEMU pseudo-terminal and on a USB serial adapter; on Linux the
adapter's low-latency mode is switched on (FTDI's default 16 ms latency timer would otherwise
dominate every round trip).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import serial

from motocoach.errors import DeviceError, ProtocolError
from motocoach.protocol import codec, spec
from motocoach.protocol.codec import Frame
from motocoach.protocol.spec import MsgType, Status

log = logging.getLogger("motocoach.link")

#: reply kinds the host accepts whatever their header version (their fields never move)
_ANY_VERSION = (MsgType.IDENTITY, MsgType.ACK)


class DeviceNackError(DeviceError):
    """The device answered a request with an ACK carrying an error status."""

    def __init__(self, request: MsgType | int, status: int, value: int = 0) -> None:
        try:
            name = Status(status).name
        except ValueError:
            name = f"status {status}"
        req = request.name if isinstance(request, MsgType) else f"0x{request:02x}"
        super().__init__(f"device refused {req}: {name}")
        self.request = request
        self.status = status
        self.value = value


class DeviceTimeout(DeviceError):
    """No reply echoing the request's seq arrived in time (or the link broke while waiting).

    ``seq`` and ``sent_at`` (perf_counter) identify the request, so a late reply can be matched.
    """

    seq: int = -1
    sent_at: float = 0.0


@dataclass(frozen=True)
class Reply:
    """A reply and its host-side timing (``time.perf_counter`` seconds)."""

    frame: Frame
    sent_at: float  #: just before the request's bytes were written
    received_at: float  #: when the reader thread decoded the reply's delimiter

    @property
    def latency_s(self) -> float:
        return self.received_at - self.sent_at


class _Pending:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: Frame | None = None


def open_serial(port: str, baud: int) -> serial.SerialBase:
    """Open ``port`` (a device path or a pyserial URL) raw, with low latency where possible."""
    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, write_timeout=2.0)
    except (serial.SerialException, OSError, ValueError) as e:
        raise DeviceError(f"cannot open {port}: {e}. Check the cable and the port name "
                          "(ls /dev/ttyUSB* /dev/ttyACM*), and that no other program holds it") from e
    try:
        ser.set_low_latency_mode(True)  # type: ignore[attr-defined]
        log.debug("%s: low-latency mode on", port)
    except (AttributeError, OSError, ValueError, NotImplementedError, serial.SerialException) as e:
        # ptys and non-Linux hosts have no latency timer; nothing to tune there
        log.info("%s: low-latency mode not available (%s)", port, e)
    return ser


def old_unit_message(pmin: int, pmax: int) -> str:
    """What to tell the owner of a unit whose firmware is older than this tool's protocol."""
    return (f"unit speaks protocol {pmin}..{pmax}, this tool {spec.PROTOCOL_MIN}..{spec.PROTOCOL_MAX}: flash "
            f"firmware {spec.FIRMWARE_FOR_PROTOCOL} or newer (make flash BOARD=<board> PORT=<port>, or "
            f"`motocoach device update` with a firmware bundle); older units cannot check signed models")


class SerialLink:
    """Request/response link to one unit.

    Args:
        port: serial device (``/dev/ttyUSB0``, a pty path) or any pyserial URL.
        baud: line rate; ignored by ptys.
        timeout: default seconds to wait for a reply.
        retries: default number of re-sends (with a fresh seq) after a timeout.
        opener: ``(port, baud) -> serial object``; tests inject fakes here.

    Use as a context manager, or call :meth:`close`. A request on a closed link reopens the
    port; a request on a broken link (read or write failed) reconnects first (for 2 s at most).
    """

    def __init__(self, port: str, baud: int = 921600, timeout: float = 0.5, *, retries: int = 0,
                 opener: Callable[[str, int], Any] = open_serial) -> None:
        self.port, self.baud, self.timeout, self.retries = port, baud, timeout, retries
        self._opener = opener
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self.unsolicited: "queue.Queue[Frame]" = queue.Queue()
        self.ignored: Counter[str] = Counter()  #: frames dropped by the host, by reason
        #: replies that matched no waiting request (e.g. arrived after their timeout), newest last
        self.unmatched: "deque[Frame]" = deque(maxlen=4096)
        self.decoder = codec.FrameDecoder(check_version=False, on_error=self._on_decode_error)
        self._ser: Any = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._broken: Exception | None = None
        self._open()

    # ---- lifecycle ----------------------------------------------------------------------
    def _open(self) -> None:
        self._ser = self._opener(self.port, self.baud)
        self._broken = None
        self._stop.clear()
        self.decoder = codec.FrameDecoder(check_version=False, on_error=self._on_decode_error)
        self._reader = threading.Thread(target=self._read_loop, name=f"link-reader {self.port}", daemon=True)
        self._reader.start()
        self.send_raw(codec.DELIMITER)  # idle fill: ends whatever garbage the device has buffered

    def close(self) -> None:
        """Stop the reader thread, fail pending requests and close the port (idempotent)."""
        self._stop.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        self._reader = None
        if self._ser is not None:
            try:
                self._ser.close()
            except (OSError, serial.SerialException) as e:
                log.debug("close %s: %s", self.port, e)
            self._ser = None
        self._fail_pending()

    def reconnect(self, wait: float = 5.0) -> None:
        """Close and reopen the port, retrying for up to ``wait`` seconds (e.g. after a reset)."""
        self.close()
        deadline = time.monotonic() + wait
        while True:
            try:
                self._open()
                return
            except DeviceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def is_open(self) -> bool:
        return self._ser is not None and self._broken is None

    def __enter__(self) -> "SerialLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        ser = self._ser
        while not self._stop.is_set():
            try:
                data = ser.read(ser.in_waiting or 1)
            except (OSError, serial.SerialException, TypeError, AttributeError) as e:
                if not self._stop.is_set():
                    log.warning("%s: read failed (%s); the link needs a reconnect", self.port, e)
                    self._broken = e
                    self._fail_pending()
                return
            if not data:
                continue
            for frame in self.decoder.feed(data):
                self._dispatch(dataclasses.replace(frame, received_at=time.perf_counter()))

    def _on_decode_error(self, e: ProtocolError) -> None:
        if isinstance(e, codec.FrameContentError):  # intact but not understood: worth a log line
            log.info("%s: ignored a device frame: %s", self.port, e)
        else:
            log.debug("%s: dropped bytes: %s", self.port, e)

    def _dispatch(self, frame: Frame) -> None:
        if not spec.PROTOCOL_MIN <= frame.version <= spec.PROTOCOL_MAX and frame.type not in _ANY_VERSION:
            self._ignore("bad_version", frame)
            return
        if frame.type is MsgType.FAULT:
            self.unsolicited.put(frame)
            return
        if not isinstance(frame.type, MsgType) or not frame.type & 0x80:
            self._ignore("not_a_device_message", frame)
            return
        with self._pending_lock:
            pending = self._pending.get(frame.seq)
        if pending is None or pending.event.is_set():
            if frame.type is MsgType.LOG:
                self.unsolicited.put(frame)
            else:
                self.unmatched.append(frame)
                self._ignore("unmatched_seq", frame)
            return
        pending.reply = frame
        pending.event.set()

    def _ignore(self, reason: str, frame: Frame) -> None:
        self.ignored[reason] += 1
        log.info("%s: ignored %s frame type 0x%02x seq %d (%s)", self.port,
                 f"v{frame.version}", int(frame.type), frame.seq, reason)

    def _fail_pending(self) -> None:
        with self._pending_lock:
            for p in self._pending.values():
                p.event.set()

    # ---- writing ------------------------------------------------------------------------
    def next_seq(self) -> int:
        with self._seq_lock:
            self._seq = (self._seq + 1) & 0xFFFF
            return self._seq

    def send_raw(self, data: bytes) -> float:
        """Write bytes as they are (tests use this for garbage); returns the send timestamp."""
        if self._ser is None:
            raise DeviceError(f"{self.port} is closed; open a new link")
        with self._write_lock:
            t = time.perf_counter()
            try:
                self._ser.write(data)
            except (OSError, serial.SerialException) as e:
                self._broken = e
                raise DeviceError(f"write to {self.port} failed: {e}; reconnect the unit") from e
        return t

    def exchange(self, msg_type: MsgType | int, payload: bytes = b"", *, timeout: float | None = None,
                 seq: int | None = None, version: int = spec.PROTOCOL_VERSION) -> Reply:
        """Send one request and wait for the frame echoing its seq; raises DeviceError on timeout."""
        seq = self.next_seq() if seq is None else seq & 0xFFFF
        return self.exchange_raw(codec.encode_frame(msg_type, seq, payload, version=version), seq,
                                 timeout=timeout, what=_name(msg_type))

    def exchange_raw(self, wire: bytes, seq: int, *, timeout: float | None = None, what: str = "frame") -> Reply:
        """Write pre-encoded bytes (e.g. a deliberately bad frame) and wait for a reply echoing ``seq``."""
        if self._ser is None:  # closed by close(): reopen, like a pyserial port
            log.info("%s: reopening a closed link", self.port)
            self._open()
        elif self._broken is not None:  # the port failed under us (unplugged, target restarted)
            log.info("%s: link broken (%s); reconnecting", self.port, self._broken)
            self.reconnect(wait=2.0)
        pending = _Pending()
        with self._pending_lock:
            self._pending[seq] = pending
        try:
            sent = self.send_raw(wire)
            wait = self.timeout if timeout is None else timeout
            if not pending.event.wait(wait) or pending.reply is None:
                why = f"link broken: {self._broken}" if self._broken else f"no reply within {wait * 1000:.0f} ms"
                err = DeviceTimeout(f"{self.port}: {what} seq {seq}: {why}. Check that the unit "
                                    "is powered, running the coach firmware, and at the same baud rate")
                err.seq, err.sent_at = seq, sent
                raise err
            return Reply(pending.reply, sent, pending.reply.received_at)
        finally:
            with self._pending_lock:
                if self._pending.get(seq) is pending:
                    del self._pending[seq]

    def request(self, msg_type: MsgType | int, payload: bytes = b"", timeout: float | None = None,
                retries: int | None = None) -> Frame:
        """Send a request, return the reply frame; re-send on timeout ``retries`` times."""
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            try:
                return self.exchange(msg_type, payload, timeout=timeout).frame
            except DeviceError:
                if attempt + 1 == attempts:
                    raise
                log.info("%s: %s timed out, retry %d", self.port, _name(msg_type), attempt + 1)
        raise AssertionError("unreachable")

    def command(self, msg_type: MsgType, payload: bytes = b"", timeout: float | None = None) -> int:
        """A request answered by ACK: return its ``value``; raise :class:`DeviceNackError` otherwise."""
        frame = self.request(msg_type, payload, timeout=timeout)
        return _ack_value(msg_type, frame)

    # ---- helpers ------------------------------------------------------------------------
    def hello(self, check: bool = True) -> dict[str, Any]:
        """IDENTITY as a dict (text ids, hex sha256 and unit id); raises DeviceError if the versions can't meet."""
        frame = self.request(MsgType.HELLO, codec.pack(MsgType.HELLO, proto_min=spec.PROTOCOL_MIN,
                                                       proto_max=spec.PROTOCOL_MAX))
        if frame.type is MsgType.ACK and len(frame.payload) >= 6 and frame.payload[1] == Status.BAD_VERSION:
            value = int.from_bytes(frame.payload[2:6], "little")
            raise DeviceError(old_unit_message(value & 0xFF, (value >> 8) & 0xFF))
        if frame.type is not MsgType.IDENTITY:
            raise DeviceError(f"HELLO answered with {_name(frame.type)}, expected IDENTITY")
        size = spec.messages()[MsgType.IDENTITY].fixed_size
        if len(frame.payload) < size:
            raise DeviceError(old_unit_message(frame.payload[4] if len(frame.payload) > 5 else 1,
                                               frame.payload[5] if len(frame.payload) > 5 else 1))
        ident = codec.unpack(MsgType.IDENTITY, frame.payload[:size])  # newer devices may append
        ident["board"] = codec.text(ident["board"])
        ident["model_id"] = codec.text(ident["model_id"])
        ident["model_sha256"] = ident["model_sha256"].hex()
        ident["unit_id"] = ident["unit_id"].hex()
        if check and ident["proto_max"] < spec.PROTOCOL_MIN:
            raise DeviceError(old_unit_message(ident["proto_min"], ident["proto_max"]))
        if check and ident["proto_min"] > spec.PROTOCOL_MAX:
            raise DeviceError(f"unit speaks protocol {ident['proto_min']}..{ident['proto_max']}, this tool "
                              f"{spec.PROTOCOL_MIN}..{spec.PROTOCOL_MAX}: update the tool")
        return ident

    def status(self) -> dict[str, Any]:
        """STATUS counters as a dict."""
        return self._expect(self.request(MsgType.STATUS_REQ), MsgType.STATUS)

    def telemetry(self, values: Sequence[float], timeout: float | None = None) -> dict[str, Any]:
        """Send one TELEMETRY sample; return the HAPTIC fields plus ``seq``, ``sent_at``, ``latency_s``."""
        reply = self.exchange(MsgType.TELEMETRY, codec.pack_telemetry(values), timeout=timeout)
        out = self._expect(reply.frame, MsgType.HAPTIC, MsgType.TELEMETRY)
        out["seq"] = reply.frame.seq
        out["sent_at"] = reply.sent_at
        out["latency_s"] = reply.latency_s
        return out

    def _expect(self, frame: Frame, kind: MsgType, request: MsgType | None = None) -> dict[str, Any]:
        if frame.type is MsgType.ACK:
            _ack_value(request or frame.type, frame)
        if frame.type is not kind:
            raise DeviceError(f"expected {kind.name}, got {_name(frame.type)}")
        return codec.unpack(kind, frame.payload)


def _ack_value(request: MsgType | int, frame: Frame) -> int:
    if frame.type is not MsgType.ACK:
        raise DeviceError(f"{_name(request)} answered with {_name(frame.type)}, expected ACK")
    ack = codec.unpack(MsgType.ACK, frame.payload)
    if ack["status"] != Status.OK:
        raise DeviceNackError(request, ack["status"], ack["value"])
    return int(ack["value"])


def _name(t: MsgType | int) -> str:
    return t.name if isinstance(t, MsgType) else f"type 0x{int(t):02x}"
