"""Message layout tables for ``docs/protocol.md``, rendered from :mod:`.spec`.

The tables in the doc sit between two markers and are rewritten by
``python -m motocoach.protocol.docgen``; a test fails when they drift from the spec.
"""

from __future__ import annotations

import sys
from pathlib import Path

from motocoach.protocol import spec
from motocoach.protocol.spec import Fault, HapticFlag, MsgType, SlotState, Status

BEGIN = "<!-- BEGIN GENERATED FROM host/protocol/spec.py: python -m motocoach.protocol.docgen -->"
END = "<!-- END GENERATED -->"
DOC = Path("docs/protocol.md")

_FMT_NAMES = {"B": "u8", "b": "i8", "H": "u16", "h": "i16", "I": "u32", "i": "i32", "f": "f32"}


def _fmt_name(fmt: str) -> str:
    return f"u8[{fmt[:-1]}]" if fmt.endswith("s") else _FMT_NAMES[fmt]


def _direction(t: MsgType) -> str:
    return "device → host" if t & 0x80 else "host → device"


def render_tables() -> str:
    """Markdown for every message layout and code table (deterministic)."""
    out = [BEGIN, ""]
    out += ["### Message kinds", "", "| type | name | direction | payload bytes |", "|---|---|---|---|"]
    for m in spec.messages().values():
        size = str(m.fixed_size)
        if m.tail:
            size += f" + {m.tail} (≤ {spec.MAX_CHUNK if m.tail == 'data' else spec.MAX_LOG_TEXT})"
        out.append(f"| 0x{int(m.type):02x} | {m.type.name} | {_direction(m.type)} | {size} |")
    out.append("")
    for m in spec.messages().values():
        out += [f"#### {m.type.name} (0x{int(m.type):02x})", ""]
        if m.doc:
            out += [m.doc, ""]
        if not m.fields and not m.tail:
            out += ["Empty payload.", ""]
            continue
        out += ["| offset | field | type | notes |", "|---|---|---|---|"]
        for f, off in zip(m.fields, m.offsets().values()):
            out.append(f"| {off} | {f.name} | {_fmt_name(f.fmt)} | {f.doc} |")
        if m.tail:
            out.append(f"| {m.fixed_size} | {m.tail} | u8[…] | rest of the payload |")
        out.append("")
    for title, enum in (("ACK status codes", Status), ("Fault codes", Fault),
                        ("Slot states", SlotState), ("HAPTIC flags", HapticFlag)):
        out += [f"### {title}", "", "| value | name |", "|---|---|"]
        out += [f"| {int(e)} | {e.name} |" for e in enum]
        out.append("")
    out.append(END)
    return "\n".join(out)


def splice(doc_text: str) -> str:
    """Replace the generated section of ``doc_text`` with fresh tables."""
    head, sep, rest = doc_text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"docs/protocol.md lacks the markers {BEGIN!r} ... {END!r}")
    return head + render_tables() + tail


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DOC
    path.write_text(splice(path.read_text()))
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
