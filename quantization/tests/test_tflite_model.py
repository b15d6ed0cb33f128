"""The .tflite parser: what it accepts (any FULLY_CONNECTED stack + LOGISTIC/TANH/none) and
what it refuses loudly (other ops, corrupt or foreign files, wrong input width)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motocoach.errors import CodegenError
from motocoach.quantization.tflite_model import parse_tflite, quantize_multiplier
from motocoach.quantization.tflm import TflmRunner


def mutate(data: bytes, fn) -> bytes:
    """Apply ``fn(model_t)`` to the flatbuffer object tree and re-serialize."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    m = S.ModelT.InitFromObj(S.Model.GetRootAsModel(data, 0))
    fn(m, S)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _set_head(code_name: str):
    def fn(m, S):
        for oc in m.operatorCodes:
            if oc.builtinCode == S.BuiltinOperator.LOGISTIC:
                oc.builtinCode = oc.deprecatedBuiltinCode = getattr(S.BuiltinOperator, code_name)
    return fn


def _drop_head(m, S):
    sg = m.subgraphs[0]
    sg.operators = sg.operators[:-1]
    sg.outputs = np.array([sg.operators[-1].outputs[0]], np.int32)
    m.signatureDefs = None


def test_parses_the_converted_model(tflite_bytes):
    m = parse_tflite(tflite_bytes)
    assert m.ops == ["FULLY_CONNECTED"] * 3 + ["LOGISTIC"]
    assert [l.activation for l in m.layers] == ["RELU", "RELU", "NONE"]
    assert all(len(np.unique(l.weight_scales)) > 1 for l in m.layers), "weights must be per-channel"
    assert m.layers[0].act_min == max(-128, m.layers[0].output.zero_point)


@pytest.mark.parametrize("head", ["TANH", "NONE"])
def test_other_heads_are_supported_and_bit_exact(tflite_bytes, tmp_path, head):
    from motocoach.quantization import codegen
    from motocoach.quantization.cbuild import EngineLib, build_host_lib

    data = mutate(tflite_bytes, _set_head("TANH") if head == "TANH" else _drop_head)
    m = parse_tflite(data)
    assert m.head == head
    (tmp_path / "m.tflite").write_bytes(data)
    codegen.generate(tmp_path / "m.tflite", tmp_path / "gen")
    lib = EngineLib(build_host_lib(tmp_path / "build", tmp_path / "gen"))
    vecs = np.random.default_rng(5).integers(-128, 128, (20_000, m.n_inputs)).astype(np.int8)
    assert np.array_equal(lib.invoke(vecs, m.n_outputs), TflmRunner(data).run(vecs))
    assert lib.selftest() == 0


@pytest.mark.parametrize("op", ["SOFTMAX", "ADD"])
def test_unsupported_ops_are_listed(tflite_bytes, op):
    with pytest.raises(CodegenError, match=f"unsupported ops: {op}"):
        parse_tflite(mutate(tflite_bytes, _set_head(op)))


def test_unsupported_fused_activation(tflite_bytes):
    def fn(m, S):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = S.ActivationFunctionType.TANH

    with pytest.raises(CodegenError, match="fused activation"):
        parse_tflite(mutate(tflite_bytes, fn))


def test_float_model_is_refused(tflite_bytes):
    def fn(m, S):
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].type = S.TensorType.FLOAT32

    with pytest.raises(CodegenError, match="not int8"):
        parse_tflite(mutate(tflite_bytes, fn))


def test_input_width_must_match_schema(tflite_bytes):
    with pytest.raises(CodegenError, match="feature schema has 9"):
        parse_tflite(tflite_bytes, n_features=9)
    with pytest.raises(CodegenError, match="actions"):
        parse_tflite(tflite_bytes, n_actions=4)


@pytest.mark.parametrize("make", [
    lambda d: b"",
    lambda d: b"\x00" * 64,
    lambda d: d[: len(d) // 2],
    lambda d: d[:12],
    lambda d: bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
    lambda d: b"\x1c\x00\x00\x00ONNX" + d[8:],
    lambda d: b"CMB1" + d[4:],
])
def test_corrupt_or_foreign_files_fail_loudly(tflite_bytes, make):
    with pytest.raises(CodegenError):
        parse_tflite(make(tflite_bytes))


def test_quantize_multiplier_matches_tflite_semantics():
    for real in (0.5, 0.25, 1e-3, 0.999999999, 1.7, 3.2e-7):
        q, shift = quantize_multiplier(real)
        assert (1 << 30) <= q < (1 << 31)
        assert math.isclose(q * 2.0 ** (shift - 31), real, rel_tol=2 ** -30)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)          # below TFLite's shift floor
    assert quantize_multiplier(1.0) == (1 << 30, 1)
