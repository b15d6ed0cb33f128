"""Build the C engine for the host (a shared library for ctypes) and for rv32imc (QEMU).

Used by the bit-exact tests and the engine benchmark. Both builds use the warnings and
float flags the firmware uses (``-Wall -Wextra -Werror -ffp-contract=off``).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from motocoach.errors import ToolError

REPO = Path(__file__).resolve().parents[1]
ENGINE_DIR = REPO / "firmware" / "lib" / "coach_model"
CORE_INC = REPO / "firmware" / "lib" / "coach_core" / "src"
CSRC = Path(__file__).resolve().parent / "csrc"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
RV32_FLAGS = ["--specs=picolibc.specs", "-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "-mcmodel=medany"]


def _run(cmd: list[str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise ToolError(f"{cmd[0]} not found; install it with `make setup` ({what})")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"{what} failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")


def build_host_lib(out_dir: Path, model_dir: Path = ENGINE_DIR, cc: str = "gcc") -> Path:
    """Compile engine + ``model_dir/coach_model_data.c`` + the test shim into a .so."""
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / "libcoach_engine_host.so"
    _run([cc, *CFLAGS, "-O2", "-shared", "-fPIC", f"-I{model_dir}", f"-I{ENGINE_DIR}", f"-I{CORE_INC}",
          str(ENGINE_DIR / "coach_engine.c"), str(model_dir / "coach_model_data.c"), str(CSRC / "host_shim.c"),
          "-o", str(so), "-lm"], "host build of the C engine")
    return so


class EngineLib:
    """ctypes view of the host build. ``which`` = 0 for the factory model, 1 for a loaded blob."""

    def __init__(self, so: Path) -> None:
        self.lib = ctypes.CDLL(str(so))
        P = ctypes.c_void_p
        self.lib.shim_load.argtypes = [P, ctypes.c_size_t]
        self.lib.shim_load_at_offset.argtypes = [P, ctypes.c_size_t, ctypes.c_size_t]
        self.lib.shim_invoke_batch.argtypes = [ctypes.c_int, P, P, ctypes.c_size_t]
        self.lib.shim_quantize_batch.argtypes = [ctypes.c_int, P, P, P, P, ctypes.c_size_t]
        self.lib.shim_quantize_batch.restype = None
        self.lib.shim_dequantize_batch.argtypes = [ctypes.c_int, P, P, ctypes.c_size_t]
        self.lib.shim_dequantize_batch.restype = None
        self.lib.shim_info.argtypes = [ctypes.c_int, P, P]
        self.lib.shim_info.restype = None

    def load(self, blob: bytes, offset: int | None = None) -> int:
        buf = ctypes.create_string_buffer(bytes(blob), len(blob))
        if offset is None:
            return int(self.lib.shim_load(buf, len(blob)))
        return int(self.lib.shim_load_at_offset(buf, len(blob), offset))

    def invoke(self, q: np.ndarray, n_out: int, which: int = 0) -> np.ndarray:
        x = np.ascontiguousarray(q, np.int8)
        out = np.zeros((x.shape[0], n_out), np.int8)
        rc = self.lib.shim_invoke_batch(which, x.ctypes.data, out.ctypes.data, x.shape[0])
        if rc != 0:
            raise RuntimeError(f"coach_model_invoke failed with status {rc}")
        return out

    def quantize(self, tel: np.ndarray, which: int = 0, fill: int = 99) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 telemetry (N, n) -> (int8 (N, n) with ``fill`` where rejected, clamped, status)."""
        x = np.ascontiguousarray(tel, np.float32)
        out = np.full(x.shape, fill, np.int8)
        clamped = np.zeros(x.shape[0], np.uint8)
        status = np.zeros(x.shape[0], np.int32)
        self.lib.shim_quantize_batch(which, x.ctypes.data, out.ctypes.data, clamped.ctypes.data,
                                     status.ctypes.data, x.shape[0])
        return out, clamped, status

    def dequantize(self, out: np.ndarray, which: int = 0) -> np.ndarray:
        o = np.ascontiguousarray(out, np.int8)
        acts = np.zeros(o.shape, np.float32)
        self.lib.shim_dequantize_batch(which, o.ctypes.data, acts.ctypes.data, o.shape[0])
        return acts

    def selftest(self, which: int = 0) -> int:
        return int(self.lib.shim_selftest(which))

    def info(self, which: int = 0) -> tuple[str, str]:
        sha = ctypes.create_string_buffer(32)
        mid = ctypes.create_string_buffer(16)
        self.lib.shim_info(which, sha, mid)
        return sha.raw.hex(), mid.value.decode()
