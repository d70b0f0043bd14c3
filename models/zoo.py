"""PyTorch modules exported to ONNX for the `bench` harness.

Every model has a ``make(seed)`` classmethod that seeds torch, builds the module
deterministically and puts it in eval mode. ``MODELS`` describes, per exported
file name, the module class, its input/output names and which axes are dynamic;
``scripts/export_models.py`` consumes it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from torch import nn

DEFAULT_SEED = 0


class _Seeded(nn.Module):
    @classmethod
    def make(cls, seed: int = DEFAULT_SEED, **kwargs) -> "_Seeded":
        torch.manual_seed(seed)
        model = cls(**kwargs)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model


class Linear(_Seeded):
    """``torch.nn.Linear(10, 1)``: x float32 [batch, 10] -> y float32 [batch, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MLP(_Seeded):
    """64 -> 256 -> 256 -> 10 with GELU/ReLU: x float32 [batch, 64] -> logits [batch, 10]."""

    def __init__(self, d_in: int = 64, hidden: int = 256, n_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetSmall(_Seeded):
    """Small ResNet: stem conv + 3 basic blocks (16/32/64 ch) + GAP + fc.

    image float32 [batch, 3, 32, 32] -> logits float32 [batch, 10].
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(
            _BasicBlock(16, 16, stride=1),
            _BasicBlock(16, 32, stride=2),
            _BasicBlock(32, 64, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, n_classes)
        # Non-trivial BatchNorm statistics so that the exported BN is not an identity.
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.8, 1.2)
                    m.bias.uniform_(-0.1, 0.1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.stem(image))
        return self.fc(torch.flatten(self.pool(h), 1))


class EncoderSmall(_Seeded):
    """Small transformer encoder classifier.

    input_ids int64 [batch, seq] (values in [0, 1000)), attention_mask bool [batch, seq]
    (True = real token) -> logits float32 [batch, 2]. seq <= 128.
    """

    VOCAB = 1000
    MAX_LEN = 128

    def __init__(self, d_model: int = 64, n_heads: int = 4, d_ff: int = 128, n_layers: int = 2,
                 n_classes: int = 2) -> None:
        super().__init__()
        self.tok = nn.Embedding(self.VOCAB, d_model)
        self.pos = nn.Embedding(self.MAX_LEN, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=d_ff, dropout=0.0, batch_first=True
        )
        # enable_nested_tensor=False: keep the same (dense) math in eager and in export.
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device)
        h = self.tok(input_ids) + self.pos(positions).unsqueeze(0)
        h = self.encoder(h, src_key_padding_mask=~attention_mask)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)


class MixedInputs(_Seeded):
    """Dtype fixture without parameters.

    x float16 [batch, 4], scale float32 [] (rank 0), flag bool [batch], offset int64 [batch, 4]
    -> y float32 [batch, 4] = where(flag[:, None], x*scale + offset, -x) (computed in float32).
    """

    def forward(self, x: torch.Tensor, scale: torch.Tensor, flag: torch.Tensor,
                offset: torch.Tensor) -> torch.Tensor:
        xf = x.to(torch.float32)
        return torch.where(flag.unsqueeze(1), xf * scale + offset.to(torch.float32), -xf)


# ---------------------------------------------------------------------------
# Registry used by scripts/export_models.py


@dataclasses.dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: np.dtype
    # Shape with symbolic names ("batch", "seq") for dynamic axes and ints elsewhere.
    shape: tuple


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    inputs: tuple  # of InputSpec, in forward() argument order
    outputs: tuple  # of str
    # Reference inputs (fixed numpy seed) for the given concrete dims.
    make_inputs: Callable[[np.random.Generator, dict], dict]
    ref_dims: dict  # e.g. {"batch": 2, "seq": 16}


def _inputs_linear(rng, d):
    return {"x": rng.standard_normal((d["batch"], 10), dtype=np.float32)}


def _inputs_mlp(rng, d):
    return {"x": rng.standard_normal((d["batch"], 64), dtype=np.float32)}


def _inputs_resnet(rng, d):
    return {"image": rng.standard_normal((d["batch"], 3, 32, 32), dtype=np.float32)}


def _inputs_encoder(rng, d):
    b, s = d["batch"], d["seq"]
    ids = rng.integers(0, EncoderSmall.VOCAB, size=(b, s), dtype=np.int64)
    mask = np.ones((b, s), dtype=np.bool_)
    if b > 1:
        # Last row: padded at the end (only the first ~60% are real tokens).
        real = max(1, (s * 3) // 5)
        mask[-1, real:] = False
        ids[-1, real:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _inputs_mixed(rng, d):
    b = d["batch"]
    return {
        "x": rng.standard_normal((b, 4)).astype(np.float16),
        "scale": np.array(1.5, dtype=np.float32),
        "flag": (np.arange(b) % 2 == 0),
        "offset": rng.integers(-10, 10, size=(b, 4), dtype=np.int64),
    }


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("linear", Linear, (InputSpec("x", np.dtype(np.float32), ("batch", 10)),), ("y",),
                  _inputs_linear, {"batch": 2}),
        ModelSpec("mlp", MLP, (InputSpec("x", np.dtype(np.float32), ("batch", 64)),), ("logits",),
                  _inputs_mlp, {"batch": 2}),
        ModelSpec("resnet_small", ResNetSmall,
                  (InputSpec("image", np.dtype(np.float32), ("batch", 3, 32, 32)),), ("logits",),
                  _inputs_resnet, {"batch": 2}),
        ModelSpec("encoder_small", EncoderSmall,
                  (InputSpec("input_ids", np.dtype(np.int64), ("batch", "seq")),
                   InputSpec("attention_mask", np.dtype(np.bool_), ("batch", "seq"))),
                  ("logits",), _inputs_encoder, {"batch": 2, "seq": 16}),
        ModelSpec("mixed_inputs", MixedInputs,
                  (InputSpec("x", np.dtype(np.float16), ("batch", 4)),
                   InputSpec("scale", np.dtype(np.float32), ()),
                   InputSpec("flag", np.dtype(np.bool_), ("batch",)),
                   InputSpec("offset", np.dtype(np.int64), ("batch", 4))),
                  ("y",), _inputs_mixed, {"batch": 2}),
    ]
}
