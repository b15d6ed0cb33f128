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
#: the engine's hand-written sources (kernel and blob loader), compiled together everywhere
ENGINE_SOURCES = (ENGINE_DIR / "coach_engine.c", ENGINE_DIR / "coach_model_load.c")
CORE_INC = REPO / "firmware" / "lib" / "coach_core" / "src"
CSRC = Path(__file__).resolve().parent / "csrc"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
RV32_FLAGS = ["--specs=picolibc.specs", "-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "-mcmodel=medany"]
# libsodium (SHA-256 of model blobs): Debian's libsodium-dev on the host; for rv32 the archive the
# firmware Makefile builds from the pinned source package (`make -C firmware rv32-sodium`).
FIRMWARE_DIR = REPO / "firmware"
SODIUM_VER = "1.0.18"
RV32_SODIUM_LIB = FIRMWARE_DIR / "build" / "qemu" / "libsodium_verify.a"
RV32_SODIUM_INC = FIRMWARE_DIR / "build" / "third_party" / f"libsodium-{SODIUM_VER}" / "src" / "libsodium" / "include"


def _run(cmd: list[str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise ToolError(f"{cmd[0]} not found; install it with `make setup` ({what})")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"{what} failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")


def build_host_lib(out_dir: Path, model_dir: Path = ENGINE_DIR, cc: str = "gcc", simd: bool = True) -> Path:
    """Compile engine + ``model_dir/coach_model_data.c`` + the test shim into a .so.

    ``simd=False`` builds the scalar loops the MCUs run instead of the x86-64 SSE2 ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / ("libcoach_engine_host.so" if simd else "libcoach_engine_host_scalar.so")
    _run([cc, *CFLAGS, "-O2", *([] if simd else ["-DCOACH_ENGINE_NO_SIMD"]), "-shared", "-fPIC",
          f"-I{model_dir}", f"-I{ENGINE_DIR}", f"-I{CORE_INC}",
          *map(str, ENGINE_SOURCES), str(CORE_INC / "sha256.c"), str(model_dir / "coach_model_data.c"),
          str(CSRC / "host_shim.c"),
          "-o", str(so), "-lsodium", "-lm"], "host build of the C engine")
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


# ---------------------------------------------------------------- rv32imc (QEMU virt)

RV32_MEM = ["-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x100000",
            "-Wl,--defsym=__ram=0x80100000", "-Wl,--defsym=__ram_size=0x100000"]
QEMU_CMD = ["qemu-system-riscv32", "-machine", "virt", "-bios", "none", "-display", "none", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0"]


def build_rv32_program(out_dir: Path, source: Path, model_dir: Path = ENGINE_DIR, opt: str = "-Os",
                       defines: tuple[str, ...] = ()) -> Path:
    """Link a semihosting test program (``csrc/*.c``) with the engine for QEMU virt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{source.stem}{opt}.elf"
    _run(["make", "-s", "-C", str(FIRMWARE_DIR), "rv32-sodium"], "rv32 build of libsodium's few files")
    _run(["riscv64-unknown-elf-gcc", *RV32_FLAGS, "--oslib=semihost", "--crt0=semihost", *CFLAGS, opt, *defines,
          "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", f"-I{model_dir}", f"-I{ENGINE_DIR}",
          f"-I{CORE_INC}", f"-I{RV32_SODIUM_INC}", *RV32_MEM, str(source),
          *([] if source.name == "requant_check.c" else map(str, ENGINE_SOURCES)),
          str(CORE_INC / "sha256.c"), str(model_dir / "coach_model_data.c"),
          str(RV32_SODIUM_LIB), "-o", str(elf), "-lm"],
         f"rv32imc build of {source.name}")
    return elf


def build_rv32_counter(out_dir: Path, model_dir: Path = ENGINE_DIR, opt: str = "-Os") -> Path:
    """Link the instruction-counting program (csrc/rv32_count.c) with the engine for QEMU virt."""
    return build_rv32_program(out_dir, CSRC / "rv32_count.c", model_dir, opt)


def build_host_requant_check(out_dir: Path) -> Path:
    """The requantization check (csrc/requant_check.c, which includes coach_engine.c) for the host."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "requant_check"
    _run(["gcc", *CFLAGS, "-O2", f"-I{ENGINE_DIR}", f"-I{CORE_INC}", str(CSRC / "requant_check.c"),
          str(CORE_INC / "sha256.c"), "-o", str(exe), "-lsodium", "-lm"], "host build of the requantization check")
    return exe


def _image_bytes(elf: Path) -> int:
    """Bytes an ELF puts in flash: code, read-only data and the initial values of .data."""
    r = subprocess.run(["riscv64-unknown-elf-size", "-A", str(elf)], capture_output=True, text=True, check=True)
    total = 0
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and parts[0].startswith(
                (".text", ".rodata", ".srodata", ".data", ".sdata", ".init", ".fini")):
            total += int(parts[1])
    return total


def rv32_flash_all_in(out_dir: Path, model_dir: Path = ENGINE_DIR, opt: str = "-Os") -> dict[str, int]:
    """Flash of the engine with everything it pulls in (loader, SHA-256, the float input
    quantizer, soft-float and ``roundf``): the image of a program that calls every engine entry
    point minus the same program calling none (csrc/rv32_flash.c), both linked with
    --gc-sections at ``opt``; plus the bytes of its SHA-256, soft-float and libc/libm symbols."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(["make", "-s", "-C", str(FIRMWARE_DIR), "rv32-sodium"], "rv32 build of libsodium's few files")
    sizes: dict[str, int] = {}
    for name, defs in (("all", ["-DENGINE_ALL"]), ("none", [])):
        elf = out_dir / f"rv32_flash_{name}.elf"
        _run(["riscv64-unknown-elf-gcc", *RV32_FLAGS, "--oslib=semihost", "--crt0=semihost", *CFLAGS, opt, *defs,
              "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections",
              f"-I{model_dir}", f"-I{ENGINE_DIR}", f"-I{CORE_INC}", f"-I{RV32_SODIUM_INC}", *RV32_MEM,
              str(CSRC / "rv32_flash.c"), *map(str, ENGINE_SOURCES), str(CORE_INC / "sha256.c"),
              str(model_dir / "coach_model_data.c"), str(RV32_SODIUM_LIB), "-o", str(elf), "-lm"],
             "rv32imc link for the all-in flash size")
        sizes[name] = _image_bytes(elf)
    parts = _new_symbol_bytes(out_dir / "rv32_flash_all.elf", out_dir / "rv32_flash_none.elf")
    return {"flash_all_in": sizes["all"] - sizes["none"], **parts}


#: Symbol families of the all-in flash breakdown (by name; the rest is engine code and model data).
_SHA_SYMBOLS = ("SHA256", "sha256", "crypto_hash_sha256", "Krnd", "PAD")


def _new_symbol_bytes(elf_all: Path, elf_none: Path) -> dict[str, int]:
    """Bytes of the symbols only ``elf_all`` has, by family: SHA-256, soft-float/libgcc, libm/libc."""
    def syms(elf: Path) -> dict[int, tuple[str, int]]:
        r = subprocess.run(["riscv64-unknown-elf-nm", "-S", str(elf)], capture_output=True, text=True, check=True)
        out = {}
        for line in r.stdout.splitlines():
            p = line.split()
            if len(p) == 4 and p[2] in "tTrRdDsSgG":
                out[int(p[0], 16)] = (p[3], int(p[1], 16))  # by address: aliases count once
        return out

    none_names = {n for n, _ in syms(elf_none).values()}
    parts = {"sha256_bytes": 0, "softfloat_bytes": 0, "libc_libm_bytes": 0}
    for name, size in syms(elf_all).values():
        if name in none_names:
            continue
        if any(k in name for k in _SHA_SYMBOLS):
            parts["sha256_bytes"] += size
        elif name.startswith("__"):
            parts["softfloat_bytes"] += size
        elif name in ("roundf", "memchr", "memcmp", "memcpy", "memset"):
            parts["libc_libm_bytes"] += size
    return parts


def run_rv32(elf: Path, cwd: Path | None = None, timeout_s: float = 120.0) -> dict[str, int]:
    """Run a semihosting program under QEMU (-icount shift=0: instret = guest instructions) and
    parse its ``KEY value`` lines. Raises ToolError on a non-zero exit."""
    if shutil.which(QEMU_CMD[0]) is None:
        raise ToolError("qemu-system-riscv32 not found; install qemu-system-misc (`make setup`)")
    r = subprocess.run([*QEMU_CMD, "-kernel", str(elf)], capture_output=True, text=True, timeout=timeout_s, cwd=cwd)
    if r.returncode != 0:
        raise ToolError(f"{elf.name} exited {r.returncode} under QEMU:\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    values = {}
    for line in (r.stdout + "\n" + r.stderr).splitlines():  # semihosting console may use either
        key, _, val = line.partition(" ")
        if key.isupper() and val.strip().lstrip("-").isdigit():
            values[key.lower()] = int(val)
    return values


def count_rv32(elf: Path, timeout_s: float = 60.0) -> dict[str, int]:
    """Instruction counts of the counter program (exit 1 = golden self-test failed)."""
    return {k: v for k, v in run_rv32(elf, timeout_s=timeout_s).items() if k.endswith("_instructions")}


def rv32_section_sizes(out_dir: Path, model_dir: Path = ENGINE_DIR) -> dict[str, int]:
    """Section sizes of the engine and the model data compiled as the firmware does (-Os,
    function/data sections), plus the deepest per-tick stack frame from -fstack-usage."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {"engine_text": 0, "model_rodata": 0, "static_ram": 0}
    for src, key in (*((e, "engine_text") for e in ENGINE_SOURCES), (model_dir / "coach_model_data.c", "model_rodata")):
        obj = out_dir / (src.stem + ".o")
        _run(["riscv64-unknown-elf-gcc", *RV32_FLAGS, *CFLAGS, "-Os", "-ffunction-sections", "-fdata-sections",
              "-fstack-usage", f"-I{model_dir}", f"-I{ENGINE_DIR}", f"-I{CORE_INC}", f"-I{RV32_SODIUM_INC}",
              "-c", str(src), "-o", str(obj)],
             "rv32imc compile for section sizes")
        r = subprocess.run(["riscv64-unknown-elf-size", "-A", str(obj)], capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            name, size = parts[0], int(parts[1])
            if name.startswith((".text", ".rodata", ".srodata")):
                sizes[key] += size
            elif name.startswith((".data", ".sdata")):
                sizes[key] += size
                sizes["static_ram"] += size
            elif name.startswith((".bss", ".sbss")):
                sizes["static_ram"] += size
    stack = {}
    for src in ENGINE_SOURCES:
        for line in (out_dir / (src.stem + ".su")).read_text().splitlines():
            loc, size, _kind = line.split("\t")
            stack[loc.rsplit(":", 1)[-1]] = int(size)
    sizes["stack_invoke"] = stack["coach_model_invoke"]
    sizes["stack_quantize_input"] = stack["coach_model_quantize_input"]
    sizes["stack_load"] = stack["coach_model_load"]
    return sizes
