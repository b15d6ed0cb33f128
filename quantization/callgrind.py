"""x86-64 instructions per inference: the C engine and TFLM's ``MicroInterpreter::Invoke`` in
one callgrind run (valgrind), on the same model and the same random int8 inputs.

A child Python process invokes both ``n`` times; callgrind collects only inside
``coach_model_invoke`` and ``tflite::micro::MicroInterpreter::Invoke()``, so the totals of
those two functions divided by ``n`` are their instructions per call (``where: host``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from motocoach.errors import ToolError

ENGINE_FN = "coach_model_invoke"
TFLM_FN = "tflite::micro::MicroInterpreter::Invoke()"


def _child(model_dir: str, build_dir: str, n: int, simd: bool = True) -> None:
    import numpy as np

    from motocoach.quantization.cbuild import EngineLib, build_host_lib
    from motocoach.quantization.tflm import TflmRunner

    lib = EngineLib(build_host_lib(Path(build_dir), Path(model_dir), simd=simd))
    tflm = TflmRunner((Path(model_dir) / "default_model.tflite").read_bytes())
    vecs = np.random.default_rng(0).integers(-128, 128, (n, tflm.n_in)).astype(np.int8)
    if not np.array_equal(lib.invoke(vecs, tflm.n_out), tflm.run(vecs)):
        sys.exit(3)  # a speed figure for a wrong engine is worthless


def x86_instructions(model_dir: Path, work_dir: Path, n: int = 500, simd: bool = True) -> dict[str, float]:
    """Instructions per inference of the engine (host gcc -O2; ``simd=False``: the scalar loops the
    MCUs run) and of TFLM's Invoke in the same run, and their ratio."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        raise ToolError("valgrind not found; install it with `apt-get install valgrind`")
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
           f"--toggle-collect={ENGINE_FN}", f"--toggle-collect={TFLM_FN}", sys.executable, "-c",
           "import sys; from motocoach.quantization.callgrind import _child; "
           f"_child({str(model_dir)!r}, {str(work_dir / 'build')!r}, {int(n)}, {bool(simd)})"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"callgrind run failed (exit {r.returncode}; 3 = engine differs from TFLM):\n"
                        f"{r.stderr[-3000:]}")
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True,
                         text=True, check=True).stdout
    per_call = {}
    for key, fn in (("engine", ENGINE_FN), ("tflm", TFLM_FN)):
        m = re.search(r"^\s*([\d,]+) \([^)]*\)\s+\S*:" + re.escape(fn) + r" ", ann, re.M)
        if m is None:
            raise ToolError(f"callgrind recorded no {fn}")
        per_call[key] = int(m.group(1).replace(",", "")) / n
    return {"x86_instructions_per_inference": round(per_call["engine"]),
            "tflm_x86_instructions_per_invoke": round(per_call["tflm"]),
            "tflm_ratio": round(per_call["tflm"] / per_call["engine"], 3), "calls": n}
