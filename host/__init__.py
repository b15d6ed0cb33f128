"""moto-edge-coach: train, quantize, compile and prove a haptic rider-coaching policy.

Subpackages: ``motocoach.training`` (simulator, datasets, BC/PPO), ``motocoach.quantization``
(ONNX -> full int8 -> C), ``motocoach.protocol`` (wire codec), ``motocoach.device``
(serial link and field operations). The feature schema is :mod:`motocoach.schema`.
"""

__version__ = "0.1.0"
