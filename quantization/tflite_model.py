"""Parse a full-int8 ``.tflite`` and derive everything the C engine needs.

The flatbuffer is read with the ``tflite`` package (generated from the TFLite schema).
:func:`parse_tflite` accepts exactly one shape of model: a stack of FULLY_CONNECTED ops
(fused activation NONE, RELU or RELU6) optionally followed by one LOGISTIC or TANH, int8
activations, per-channel (or per-tensor) int8 weights with zero point 0 and int32 bias.
Anything else raises :class:`~motocoach.errors.CodegenError` naming what is wrong.

Derived parameters follow TFLM's Prepare step:

* per-channel ``QuantizeMultiplier(input_scale * weight_scale[c] / output_scale)``
  (computed in double, like ``PopulateConvolutionQuantizationParams``);
* fused activation clamps from ``CalculateActivationRangeQuantized``;
* the input zero point folded into the bias (``bias - zp_in * sum(row)``) so the device's
  inner loop is a bare dot product. This is exact integer algebra.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from motocoach.errors import CodegenError

_SUPPORTED_ACT = {0: "NONE", 1: "RELU", 3: "RELU6"}  # tflite.ActivationFunctionType values
HEADS = {"NONE": 0, "LOGISTIC": 1, "TANH": 2}


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor scale and zero point of an int8 activation tensor."""

    scale: float
    zero_point: int


@dataclass
class FcLayer:
    """One FULLY_CONNECTED op with TFLM's prepared integer parameters."""

    weights: np.ndarray          # int8 [n_out, n_in]
    bias: np.ndarray             # int32 [n_out] as stored in the .tflite
    weight_scales: np.ndarray    # float32 [n_out] (or [1] per-tensor, broadcast)
    input: QuantParams
    output: QuantParams
    activation: str              # NONE | RELU | RELU6
    multiplier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    act_min: int = -128
    act_max: int = 127

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[0])

    @property
    def folded_bias(self) -> np.ndarray:
        """Bias with the input zero point folded in: ``bias - zp_in * rowsum(W)`` (int32)."""
        rows = self.weights.astype(np.int64).sum(axis=1)
        folded = self.bias.astype(np.int64) - int(self.input.zero_point) * rows
        if np.any(np.abs(folded) >= 2**31):
            raise CodegenError("folded bias overflows int32; the model's quantization is degenerate")
        return folded.astype(np.int32)


@dataclass
class TfliteModel:
    """A parsed, validated full-int8 MLP."""

    tflite: bytes
    layers: list[FcLayer]
    head: str                    # NONE | LOGISTIC | TANH
    input: QuantParams
    output: QuantParams
    head_input: QuantParams | None
    ops: list[str]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.tflite).hexdigest()


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: real -> (Q31 multiplier, shift), shift > 0 = left.

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.0)
    (0, 0)
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return int(q_fixed), int(shift)


def _round_half_away(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_scalar(value: float, q: QuantParams) -> int:
    """TFLM ``Quantize`` of one float: ``zp + round(value / scale)`` in float32."""
    r = float(np.float32(value) / np.float32(q.scale))
    return q.zero_point + _round_half_away(r)


def activation_range(activation: str, out: QuantParams) -> tuple[int, int]:
    """TFLM ``CalculateActivationRangeQuantized`` for int8."""
    lo, hi = -128, 127
    if activation == "RELU":
        lo = max(lo, quantize_scalar(0.0, out))
    elif activation == "RELU6":
        lo = max(lo, quantize_scalar(0.0, out))
        hi = min(hi, quantize_scalar(6.0, out))
    return lo, hi


def _op_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def parse_tflite(data: bytes, *, n_features: int | None = None, n_actions: int | None = None) -> TfliteModel:
    """Parse and validate ``data``; derive the engine parameters. Raises CodegenError.

    ``n_features`` / ``n_actions`` (default: the feature schema) must match the model's
    input and output widths.
    """
    import tflite

    from motocoach.schema import load_schema

    schema = load_schema()
    n_features = schema.n_features if n_features is None else n_features
    n_actions = schema.n_actions if n_actions is None else n_actions
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise CodegenError("not a TFLite flatbuffer (missing 'TFL3' identifier); pass the "
                           "*_full_integer_quant.tflite written by `motocoach quantize`")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise CodegenError(f"model has {model.SubgraphsLength()} subgraphs; only 1 is supported")
        sg = model.Subgraphs(0)
        names = _op_names()
        ops, op_rows = [], []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            ops.append(names.get(code, f"UNKNOWN({code})"))
            op_rows.append(op)
        return _build(model, sg, ops, op_rows, data, n_features, n_actions)
    except CodegenError:
        raise
    except Exception as e:  # flatbuffer offsets out of range, struct errors, ...
        raise CodegenError(f"corrupt .tflite ({type(e).__name__}: {e}); regenerate it with "
                           "`motocoach quantize`") from e


def _tensor(model, sg, idx: int) -> tuple[object, np.ndarray | None]:
    t = sg.Tensors(int(idx))
    buf = model.Buffers(t.Buffer())
    arr = buf.DataAsNumpy() if buf is not None and buf.DataLength() else None
    return t, (None if isinstance(arr, int) else arr)


def _qparams(t, what: str) -> tuple[np.ndarray, np.ndarray]:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        raise CodegenError(f"{what} is not quantized; the model must be full-int8")
    return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int64)


def _act_tensor(t, what: str) -> QuantParams:
    import tflite

    if t.Type() != tflite.TensorType.INT8:
        raise CodegenError(f"{what} is not int8 (type {t.Type()}); convert with int8 input/output")
    sc, zp = _qparams(t, what)
    if len(sc) != 1 or not (np.isfinite(sc[0]) and sc[0] > 0):
        raise CodegenError(f"{what} needs one finite positive scale")
    return QuantParams(float(sc[0]), int(zp[0]))


def _build(model, sg, ops, op_rows, data, n_features, n_actions) -> TfliteModel:
    unsupported = sorted({o for o in ops if o not in ("FULLY_CONNECTED", "LOGISTIC", "TANH")})
    if unsupported:
        raise CodegenError(f"unsupported ops: {', '.join(unsupported)} (op list: {', '.join(ops)}); "
                           "the engine runs FULLY_CONNECTED stacks followed by LOGISTIC/TANH/none")
    n_fc = sum(o == "FULLY_CONNECTED" for o in ops)
    heads = [o for o in ops if o != "FULLY_CONNECTED"]
    if n_fc == 0 or len(heads) > 1 or (heads and ops[-1] == "FULLY_CONNECTED"):
        raise CodegenError(f"op order {', '.join(ops)} is not FULLY_CONNECTED x N [+ LOGISTIC|TANH]")
    if n_fc > 4:
        raise CodegenError(f"{n_fc} FULLY_CONNECTED layers; the engine supports at most 4")
    if sg.InputsLength() != 1 or sg.OutputsLength() != 1:
        raise CodegenError("the model must have exactly one input and one output tensor")
    layers: list[FcLayer] = []
    prev_out = int(sg.Inputs(0))
    head_input = None
    for name, op in zip(ops, op_rows):
        ins = [int(i) for i in op.InputsAsNumpy()]
        outs = [int(i) for i in op.OutputsAsNumpy()]
        if ins[0] != prev_out:
            raise CodegenError("ops are not a single chain from the model input to its output")
        t_in, _ = _tensor(model, sg, ins[0])
        t_out, _ = _tensor(model, sg, outs[0])
        qin, qout = _act_tensor(t_in, f"{name} input"), _act_tensor(t_out, f"{name} output")
        if name == "FULLY_CONNECTED":
            layers.append(_fc_layer(model, sg, op, ins, qin, qout, len(layers)))
        else:
            head_input = qin
        prev_out = outs[0]
    if prev_out != int(sg.Outputs(0)):
        raise CodegenError("the last op does not write the model output")
    for a, b in zip(layers, layers[1:]):
        if a.n_out != b.n_in or a.output != b.input:
            raise CodegenError("consecutive FULLY_CONNECTED layers disagree on width or quant params")
    if max(lay.n_out for lay in layers) > 64 or max(lay.n_in for lay in layers) > 64:
        raise CodegenError("a layer is wider than 64; the engine supports at most 64")
    t_model_in, _ = _tensor(model, sg, sg.Inputs(0))
    t_model_out, _ = _tensor(model, sg, sg.Outputs(0))
    qi, qo = _act_tensor(t_model_in, "model input"), _act_tensor(t_model_out, "model output")
    if layers[0].n_in != n_features or int(np.prod(t_model_in.ShapeAsNumpy())) != n_features:
        raise CodegenError(f"model input has {layers[0].n_in} features but the feature schema has "
                           f"{n_features}; retrain the policy for this schema")
    if layers[-1].n_out != n_actions:
        raise CodegenError(f"model output has {layers[-1].n_out} values but the schema has {n_actions} actions")
    return TfliteModel(data, layers, heads[0] if heads else "NONE", qi, qo, head_input, ops)


def _fc_layer(model, sg, op, ins, qin: QuantParams, qout: QuantParams, k: int) -> FcLayer:
    import tflite

    bo = op.BuiltinOptions()
    opts = tflite.FullyConnectedOptions()
    opts.Init(bo.Bytes, bo.Pos)
    act = _SUPPORTED_ACT.get(opts.FusedActivationFunction())
    if act is None:
        raise CodegenError(f"layer {k}: fused activation {opts.FusedActivationFunction()} is not "
                           "NONE/RELU/RELU6")
    if opts.WeightsFormat() != 0:
        raise CodegenError(f"layer {k}: shuffled weights format is not supported")
    t_w, w = _tensor(model, sg, ins[1])
    if t_w.Type() != tflite.TensorType.INT8 or w is None:
        raise CodegenError(f"layer {k}: weights must be constant int8")
    shape = [int(s) for s in t_w.ShapeAsNumpy()]
    if len(shape) != 2 or w.size != shape[0] * shape[1]:
        raise CodegenError(f"layer {k}: weights shape {shape} does not match its data")
    weights = w.view(np.int8).reshape(shape).copy()
    w_scale, w_zp = _qparams(t_w, f"layer {k} weights")
    if np.any(w_zp != 0):
        raise CodegenError(f"layer {k}: weight zero points must be 0 (symmetric int8)")
    if len(w_scale) not in (1, shape[0]):
        raise CodegenError(f"layer {k}: {len(w_scale)} weight scales for {shape[0]} channels")
    if len(ins) > 2 and ins[2] >= 0:
        t_b, b = _tensor(model, sg, ins[2])
        if t_b.Type() != tflite.TensorType.INT32 or b is None or b.size != 4 * shape[0]:
            raise CodegenError(f"layer {k}: bias must be constant int32[{shape[0]}]")
        bias = b.view("<i4").astype(np.int32).copy()
    else:
        bias = np.zeros(shape[0], np.int32)
    scales = np.broadcast_to(w_scale, (shape[0],)).astype(np.float32)
    mults, shifts = zip(*(quantize_multiplier(float(qin.scale) * float(s) / float(qout.scale))
                          for s in scales))
    lo, hi = activation_range(act, qout)
    return FcLayer(weights, bias, scales, qin, qout, act, np.array(mults, np.int32),
                   np.array(shifts, np.int32), lo, hi)
