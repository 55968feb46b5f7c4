"""The FFN, CNN and LSTM in plain PyTorch: nn.Module from torch.nn layers.

From the same spec and seed each net computes the same function, from the same initial
values, as `job.styles.tf.nets` and `job.styles.keras.nets`: the kernels are the same
NumPy draws (`job.train.initial`, no TensorFlow needed), moved into torch's layouts —
dense (in, out) → Linear (out, in), conv HWIO → OIHW, the LSTM's (in, 4·units) →
(4·units, in) with the gate order (input, forget, cell, output) that Keras and nn.LSTM
share. Images stay NCHW inside the conv blocks and turn NHWC again just before Flatten,
so the first dense layer takes the features in Keras' order and its kernel needs no
reshuffling.

BatchNorm is written out (not nn.BatchNorm2d): torch updates its running variance with
the unbiased batch variance and names the decay the other way round; Keras' rule is the
biased variance with `moving = moving·momentum + batch·(1 − momentum)`, kept here.
Dropout masks come from the net's own `torch.Generator` (`net.generator`, seeded by the
build seed), so a checkpoint can save and restore where the masks are.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from job.competition import IMAGE_SIDE, NUM_CLASSES
from job.config import CNNSpec, FFNSpec, LSTMSpec, cnn
from job.train.initial import glorot_uniform, layer_seed, orthogonal
from job.train.numerics import BN_EPSILON

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "elu": F.elu,
    "gelu": lambda x: F.gelu(x, approximate="none"),   # Keras' "gelu" is the exact erf form
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}
POOLING = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def draw(array: np.ndarray) -> torch.Tensor:
    """A NumPy draw from `job.train.initial` as a float32 torch tensor."""
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def dense(fan_in: int, units: int, seed: int, use_bias: bool = True) -> nn.Linear:
    """nn.Linear holding the Glorot-uniform kernel the other styles draw, transposed."""
    layer = nn.Linear(fan_in, units, bias=use_bias)
    with torch.no_grad():
        layer.weight.copy_(draw(glorot_uniform((fan_in, units), seed)).T)
        if use_bias:
            layer.bias.zero_()
    return layer


class StridedConv(nn.Conv2d):
    """A strided conv padded as TensorFlow's "SAME" (torch refuses padding="same" with a
    stride): out = ceil(side / stride), the odd row and column of padding at the bottom
    and right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (stride, _), (kernel, _) = self.stride, self.kernel_size
        pads = []
        for side in (x.shape[-1], x.shape[-2]):      # F.pad wants the last axis first
            total = max((-(-side // stride) - 1) * stride + kernel - side, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def conv(size: int, channels_in: int, filters: int, seed: int, use_bias: bool,
         stride: int = 1, padding: str = "same") -> nn.Conv2d:
    """nn.Conv2d holding the HWIO draw as OIHW. For an even kernel under "same" torch,
    like TensorFlow, pads the extra row and column at the bottom and right."""
    if stride > 1:
        layer = StridedConv(channels_in, filters, size, stride=stride, bias=use_bias)
    else:
        layer = nn.Conv2d(channels_in, filters, size, padding=padding, bias=use_bias)
    with torch.no_grad():
        layer.weight.copy_(draw(glorot_uniform((size, size, channels_in, filters), seed))
                           .permute(3, 2, 0, 1))
        if use_bias:
            layer.bias.zero_()
    return layer


class BatchNorm(nn.Module):
    """Keras' BatchNormalization over the channel axis (1): batch statistics in training,
    moving ones otherwise, statistics in float32 under mixed precision."""

    def __init__(self, channels: int, momentum: float):
        super().__init__()
        self.momentum = momentum
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        shape = [1, -1] + [1] * (x.dim() - 2)   # broadcast over N (and H, W)
        if self.training:
            axes = [0, *range(2, x.dim())]
            mean, variance = x.mean(axes), x.var(axes, unbiased=False)
            with torch.no_grad():
                self.moving_mean.mul_(self.momentum).add_(mean * (1.0 - self.momentum))
                self.moving_variance.mul_(self.momentum).add_(variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * torch.rsqrt(variance + BN_EPSILON)
        y = (x - mean.view(shape)) * scale.view(shape) + self.beta.view(shape)
        return y.to(dtype)


class Block(nn.Module):
    """Linear or Conv (bias-free under BatchNorm), then BatchNorm if asked, then activation."""

    def __init__(self, linear: nn.Module, channels: int, spec: FFNSpec | CNNSpec):
        super().__init__()
        self.linear = linear
        self.norm = BatchNorm(channels, spec.batch_norm_momentum) if spec.batch_norm else None
        self.activation = ACTIVATIONS[spec.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.activation(x)


class Net(nn.Module):
    """What the three nets share: dropout from their own generator and float32 logits."""

    def __init__(self, seed: int, device: str):
        super().__init__()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def dropout(self, x: torch.Tensor, rate: float) -> torch.Tensor:
        """Inverted dropout in training, masks drawn from `self.generator`."""
        if not self.training or rate == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - rate, generator=self.generator)
        return x * keep / (1.0 - rate)

    def to_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits layer in float32 even under autocast, as the other styles keep it."""
        with torch.autocast(x.device.type, enabled=False):
            return self.logits(x.float())


class FFN(Net):
    """Per hidden width Linear → [BatchNorm] → activation → [Dropout]; then Linear(10)."""

    def __init__(self, spec: FFNSpec, seed: int, device: str = "cpu"):
        super().__init__(seed, device)
        self.spec = spec
        widths = (IMAGE_SIDE * IMAGE_SIDE, *spec.hidden)
        self.blocks = nn.ModuleList(
            Block(dense(n_in, n_out, layer_seed(seed, i), use_bias=not spec.batch_norm),
                  n_out, spec)
            for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])))
        self.logits = dense(widths[-1], NUM_CLASSES, layer_seed(seed, len(spec.hidden)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = self.dropout(block(x), self.spec.dropout)
        return self.to_logits(x)


class CNN(Net):
    """Conv blocks (`cnn.conv_blocks`), each dropped out; Flatten (NHWC); Dense blocks; logits."""

    def __init__(self, spec: CNNSpec, seed: int, device: str = "cpu"):
        super().__init__(seed, device)
        self.spec = spec
        seeds = (layer_seed(seed, i) for i in itertools.count())
        use_bias = not spec.batch_norm
        self.conv_blocks = nn.ModuleList()
        channels = 1
        for plan in cnn.conv_blocks(spec):
            block = nn.ModuleList()
            for layer in plan:
                if isinstance(layer, cnn.Pool):   # 2x2, stride 2, no padding, as in Keras
                    block.append(POOLING[layer.kind](2, 2))
                    continue
                block.append(Block(conv(layer.kernel, channels, layer.filters, next(seeds),
                                        use_bias, layer.stride, layer.padding(spec)),
                                   layer.filters, spec))
                channels = layer.filters
            self.conv_blocks.append(block)
        side, channels = cnn.feature_shape(spec)
        widths = (side * side * channels, *spec.dense)
        self.dense_blocks = nn.ModuleList(
            Block(dense(n_in, n_out, next(seeds), use_bias), n_out, spec)
            for n_in, n_out in zip(widths, widths[1:]))
        self.logits = dense(widths[-1], NUM_CLASSES, next(seeds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        for block in self.conv_blocks:
            for layer in block:
                x = layer(x)
            x = self.dropout(x, self.spec.dropout)
        x = x.permute(0, 2, 3, 1).flatten(1)   # (height, width, channels), Keras' Flatten
        for block in self.dense_blocks:
            x = self.dropout(block(x), self.spec.dense_dropout)
        return self.to_logits(x)


def lstm_layer(fan_in: int, units: int, kernel_seed: int, recurrent_seed: int) -> nn.LSTM:
    """nn.LSTM holding Keras' kernels: the gate order is the same, the forget-gate bias 1
    (unit_forget_bias). torch keeps two bias vectors that are added; the second stays
    zero and frozen, so there is one trained bias, as in Keras."""
    layer = nn.LSTM(fan_in, units, batch_first=True)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(draw(glorot_uniform((fan_in, 4 * units), kernel_seed)).T)
        layer.weight_hh_l0.copy_(draw(orthogonal((units, 4 * units), recurrent_seed)).T)
        layer.bias_ih_l0.copy_(torch.cat([torch.zeros(units), torch.ones(units),
                                          torch.zeros(2 * units)]))
        layer.bias_hh_l0.zero_()
    layer.bias_hh_l0.requires_grad_(False)
    return layer


class LSTM(Net):
    """Image rows as 28 time steps; LSTM layers, each dropped out; relu Dense layers; logits."""

    def __init__(self, spec: LSTMSpec, seed: int, device: str = "cpu"):
        super().__init__(seed, device)
        self.spec = spec
        seeds = (layer_seed(seed, i) for i in itertools.count())
        sizes = (IMAGE_SIDE, *spec.units)
        self.recurrent = nn.ModuleList(lstm_layer(n_in, n_out, next(seeds), next(seeds))
                                       for n_in, n_out in zip(sizes, sizes[1:]))
        widths = (spec.units[-1], *spec.dense)
        self.dense = nn.ModuleList(dense(n_in, n_out, next(seeds))
                                   for n_in, n_out in zip(widths, widths[1:]))
        self.logits = dense(widths[-1], NUM_CLASSES, next(seeds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, IMAGE_SIDE, IMAGE_SIDE)
        for k, layer in enumerate(self.recurrent):
            sequence, (h, _) = layer(x)
            x = sequence if k < len(self.recurrent) - 1 else h[-1]
            x = self.dropout(x, self.spec.dropout)
        for layer in self.dense:
            x = self.dropout(F.relu(layer(x)), self.spec.dropout)
        return self.to_logits(x)


def build_ffn(spec: FFNSpec, seed: int, device: str = "cpu") -> FFN:
    """The PyTorch FFN for `spec`, initialised from `seed`, on `device`."""
    return FFN(spec, seed, device).to(device)


def build_cnn(spec: CNNSpec, seed: int, device: str = "cpu") -> CNN:
    """The PyTorch CNN for `spec`, initialised from `seed`, on `device`."""
    return CNN(spec, seed, device).to(device)


def build_lstm(spec: LSTMSpec, seed: int, device: str = "cpu") -> LSTM:
    """The PyTorch LSTM for `spec`, initialised from `seed`, on `device`."""
    return LSTM(spec, seed, device).to(device)


def trained_parameters(net: nn.Module) -> list[nn.Parameter]:
    """What the optimizer moves: every parameter but the LSTMs' frozen second bias."""
    return [p for p in net.parameters() if p.requires_grad]


def count_params(net: nn.Module) -> int:
    """Trained parameters plus BatchNorm's moving statistics: what Keras' count_params()
    reports for the same net (the LSTMs' frozen zero bias is torch's, not the net's)."""
    return (sum(p.numel() for p in trained_parameters(net))
            + sum(b.numel() for b in net.buffers()))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A copy on the host (a checkpoint or early stopping keeps it past the next step)."""
    return t.detach().cpu().numpy().copy()


def weights(net: nn.Module) -> list[np.ndarray]:
    """Every parameter and buffer, in state_dict order (what early stopping keeps)."""
    return [to_numpy(t) for t in net.state_dict().values()]


def set_weights(net: nn.Module, values: list[np.ndarray]) -> None:
    """Put `weights()` back, checking that they still fit."""
    keys = list(net.state_dict())
    if len(keys) != len(values):
        raise ValueError(f"checkpoint holds {len(values)} model arrays, the model has "
                         f"{len(keys)}: the architecture changed since it was written")
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in zip(keys, values)})
