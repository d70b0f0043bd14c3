"""PyTorch definitions of the ONNX models used by the `bench` harness.

See `models/zoo.py` for the modules and `scripts/export_models.py` for the export.
"""

from .zoo import MODELS, EncoderSmall, InputSpec, Linear, MixedInputs, MLP, ModelSpec, ResNetSmall

__all__ = ["MODELS", "EncoderSmall", "InputSpec", "Linear", "MixedInputs", "MLP", "ModelSpec", "ResNetSmall"]
