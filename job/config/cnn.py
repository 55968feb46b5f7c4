"""The CNN's conv part as one plan of layers, whichever keys describe it.

`arch.cnn.blocks` spells each block in Chris Deotte's notation, layers joined by "-":
`32C3` (32 filters, 3x3, stride 1, padded as `arch.cnn.padding`), `32C5S2` (stride 2,
always "same"), `P2` and `AP2` (2x2 max or average pooling, stride 2). Without it the
uniform keys make the plan: per `filters` entry `convs_per_block` convs, then the pool.
Every style builds from `conv_blocks(spec)`, and the config checks walk the same plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from job.competition import IMAGE_SIDE
from job.config.schema import CNNSpec

FORMS = "32C3, 32C5S2, P2 or AP2"
TOKEN = re.compile(r"(\d+)C(\d+)(?:S(\d+))?|(A?)P2")
POOL_TOKENS = {"max": "P2", "avg": "AP2"}


@dataclass(frozen=True)
class Conv:
    """A square convolution; `32C3S1` is `32C3`."""
    filters: int
    kernel: int
    stride: int = 1

    def padding(self, spec: CNNSpec) -> str:
        """`spec.padding` for a stride-1 conv; a strided one is always "same", as published."""
        return "same" if self.stride > 1 else spec.padding

    def side(self, side: int, spec: CNNSpec) -> int:
        """The output side: ceil(side / stride) under "same", side - kernel + 1 under "valid"."""
        if self.padding(spec) == "same":
            return -(-side // self.stride)
        return side - self.kernel + 1

    def __str__(self) -> str:
        return f"{self.filters}C{self.kernel}" + (f"S{self.stride}" if self.stride > 1 else "")


@dataclass(frozen=True)
class Pool:
    """2x2 pooling with stride 2 and no padding: "max" or "avg"."""
    kind: str

    def side(self, side: int, spec: CNNSpec) -> int:
        return side // 2

    def __str__(self) -> str:
        return POOL_TOKENS[self.kind]


Layer = Conv | Pool


def parse_layer(token: str) -> Layer:
    """One layer of a block; ValueError with the reason when it is none."""
    match = TOKEN.fullmatch(token.strip())
    if match is None:
        raise ValueError(f'"{token}" is not a layer like {FORMS}')
    filters, kernel, stride, average = match.groups()
    if average is not None:
        return Pool("avg" if average else "max")
    numbers = (int(filters), int(kernel), int(stride or 1))
    if min(numbers) == 0:
        raise ValueError(f'"{token}" holds a 0; filters, kernel and stride are each at least 1')
    return Conv(*numbers)


def parse_block(text: str) -> tuple[Layer, ...]:
    """A block such as "32C3-32C3-32C5S2" as its layers; ValueError when it is no block."""
    layers = tuple(parse_layer(token) for token in text.split("-"))
    if not any(isinstance(layer, Conv) for layer in layers):
        raise ValueError(f'"{text}" has no convolution; every block needs one (e.g. 32C3-P2)')
    return layers


def conv_blocks(spec: CNNSpec) -> tuple[tuple[Layer, ...], ...]:
    """The conv part, block by block: from `blocks` if set, else from the uniform keys."""
    if spec.blocks:
        return tuple(parse_block(text) for text in spec.blocks)
    pool = () if spec.pooling == "none" else (Pool(spec.pooling),)
    return tuple((Conv(filters, spec.kernel_size),) * spec.convs_per_block + pool
                 for filters in spec.filters)


def feature_shape(spec: CNNSpec) -> tuple[int, int]:
    """Side and channels of the last feature maps, what Flatten receives."""
    side, channels = IMAGE_SIDE, 1
    for block in conv_blocks(spec):
        for layer in block:
            side = layer.side(side, spec)
            channels = layer.filters if isinstance(layer, Conv) else channels
    return side, channels
