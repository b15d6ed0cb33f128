"""Reference runtimes: the TFLite-Micro interpreter (THE reference) and the host TFLite
interpreter with default delegates off (a cross-check).

* :class:`TflmRunner` runs int8 vectors through ``tflite_micro``. One invoke costs a few
  microseconds, so 100k vectors take about a second without changing the model.
* :func:`head_lut` fills the 256-entry LOGISTIC/TANH table by running the TFLM kernel on
  every possible int8 input: a one-op model is cut out of the real model (same tensors,
  same quant params) with the flatbuffer object API shipped with ``tflite_micro``.
* :func:`tflm_arena_bytes` reports TFLM's own arena accounting for the model.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from motocoach.errors import CodegenError


def _interpreter(data: bytes, arena_size: int | None = None):
    import tflite_micro

    try:
        return tflite_micro.runtime.Interpreter.from_bytes(data, arena_size=arena_size)
    except RuntimeError as e:
        raise CodegenError(f"the TFLite-Micro runtime refused the model: {e}") from e


class TflmRunner:
    """Run int8 vectors through the TFLite-Micro runtime, one invoke per vector.

    Args:
        data: the ``.tflite`` bytes (int8 input and output).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.interp = _interpreter(data)
        din = self.interp.get_input_details(0)
        dout = self.interp.get_output_details(0)
        self.in_shape = tuple(int(s) for s in din["shape"])
        self.n_in = int(np.prod(self.in_shape))
        self.n_out = int(np.prod(dout["shape"]))

    def run(self, q: np.ndarray) -> np.ndarray:
        """int8 (N, n_in) or (n_in,) -> int8 (N, n_out) or (n_out,)."""
        x = np.asarray(q)
        if x.dtype != np.int8:
            raise CodegenError(f"TFLM input must be int8, got {x.dtype}")
        single = x.ndim == 1
        x = x.reshape(-1, self.n_in)
        out = np.empty((x.shape[0], self.n_out), np.int8)
        it = self.interp
        for i in range(x.shape[0]):
            it.set_input(x[i].reshape(self.in_shape), 0)
            it.invoke()
            out[i] = it.get_output(0).reshape(-1)
        return out[0] if single else out


def head_lut(data: bytes, head: str) -> np.ndarray | None:
    """int8[256] table of the element-wise head (index q + 128), computed by TFLM itself."""
    if head == "NONE":
        return None
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    model = S.ModelT.InitFromObj(S.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    code = getattr(S.BuiltinOperator, head)
    ops = [op for op in sg.operators
           if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                  model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code]
    if len(ops) != 1:
        raise CodegenError(f"expected one {head} op, found {len(ops)}")
    op = ops[0]
    t_in, t_out = int(op.inputs[0]), int(op.outputs[0])
    for t in (t_in, t_out):  # one row of all 256 codes in a single invoke
        sg.tensors[t].shape = np.array([1, 256], np.int32)
        sg.tensors[t].shapeSignature = None
    sg.operators, sg.inputs, sg.outputs = [op], np.array([t_in], np.int32), np.array([t_out], np.int32)
    model.signatureDefs = None
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    it = _interpreter(bytes(b.Output()))
    it.set_input(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0)
    it.invoke()
    return it.get_output(0).reshape(256).astype(np.int8).copy()


def tflm_arena_bytes(data: bytes) -> int:
    """Arena bytes TFLM allocates for the model (its RecordingMicroAllocator total)."""
    it = _interpreter(data)
    text = _capture_fd(2, it.print_allocations)  # TFLM's DebugLog writes to stderr
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise CodegenError("the TFLM runtime did not report its arena usage")
    return int(m.group(1))


def _capture_fd(fd: int, fn) -> str:
    """Run ``fn`` with C-level file descriptor ``fd`` redirected to a temp file; return its text."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            fn()
        finally:
            os.dup2(saved, fd)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def litert_run(data: bytes, q: np.ndarray) -> np.ndarray:
    """The host TFLite interpreter with default delegates (XNNPACK) OFF: int8 (N, n_in) -> (N, n_out)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=data,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    din, dout = it.get_input_details()[0], it.get_output_details()[0]
    x = np.asarray(q, np.int8).reshape(-1, int(np.prod(din["shape"])))
    out = np.empty((x.shape[0], int(np.prod(dout["shape"]))), np.int8)
    for i in range(x.shape[0]):
        it.set_tensor(din["index"], x[i].reshape(din["shape"]))
        it.invoke()
        out[i] = it.get_tensor(dout["index"]).reshape(-1)
    return out
