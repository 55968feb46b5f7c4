"""The FFN, CNN and LSTM in plain TensorFlow: tf.Module, tf.Variable and tf.nn ops, no Keras.

From the same spec and seed each net creates the same layers, in the same order and
with the same initial values, as `job.styles.keras.nets`: each kernel variable holds the
NumPy draw of `job.train.initial` for its layer seed. The two styles differ only in how
they are written. Every variable exists once `__init__` returns, so `__call__` can run
eagerly or inside the trainer's tf.function (with `training` a Python bool).

Dropout masks come from the net's own `tf.random.Generator` (`net.rng`, seeded by the
build seed), advanced once per dropout call, so each training step draws new masks,
also under tf.function. A Generator is not a tf.Module: its state is not in
`net.variables` and so is no parameter, just as Keras keeps a Dropout layer's
SeedGenerator out of `model.weights`; a tf.train.Checkpoint of the net still saves it.
"""

from __future__ import annotations

import functools
import itertools
import math

import tensorflow as tf

from job.competition import IMAGE_SIDE, NUM_CLASSES
from job.config import CNNSpec, FFNSpec, LSTMSpec, cnn
from job.train.initial import glorot_uniform, layer_seed, orthogonal

# Keras' BatchNormalization epsilon, so every style normalises alike (the momentum comes
# from the spec).
from job.train.numerics import BN_EPSILON

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "elu": tf.nn.elu,
    # Keras' "gelu" activation is the exact erf form, while keras.ops.gelu defaults to
    # the tanh approximation: say which one outright.
    "gelu": functools.partial(tf.nn.gelu, approximate=False),
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
}




def dropout(x: tf.Tensor, rate: float, training: bool, rng: tf.random.Generator) -> tf.Tensor:
    """Inverted dropout in training, with a fresh stateless seed drawn from `rng`."""
    if not training or rate == 0:
        return x
    return tf.nn.experimental.stateless_dropout(x, rate=rate, seed=rng.make_seeds(1)[:, 0])


class Dense(tf.Module):
    """x @ kernel (+ bias), Glorot-uniform kernel and zero bias."""

    def __init__(self, fan_in: int, units: int, seed: int, use_bias: bool = True):
        super().__init__()
        self.kernel = tf.Variable(glorot_uniform((fan_in, units), seed), name="kernel")
        self.bias = tf.Variable(tf.zeros([units]), name="bias") if use_bias else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # Weights stay float32; under mixed precision they are cast to the input's dtype.
        y = tf.matmul(x, tf.cast(self.kernel, x.dtype))
        return y if self.bias is None else y + tf.cast(self.bias, x.dtype)


class Conv(tf.Module):
    """2-D convolution (+ bias), Glorot-uniform kernel and zero bias; "SAME" or "VALID"."""

    def __init__(self, size: int, channels_in: int, filters: int, seed: int,
                 use_bias: bool = True, stride: int = 1, padding: str = "same"):
        super().__init__()
        shape = (size, size, channels_in, filters)
        self.kernel = tf.Variable(glorot_uniform(shape, seed), name="kernel")
        self.bias = tf.Variable(tf.zeros([filters]), name="bias") if use_bias else None
        self.stride, self.padding = stride, padding.upper()

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides=self.stride,
                         padding=self.padding)
        return y if self.bias is None else y + tf.cast(self.bias, x.dtype)


class Pool(tf.Module):
    """2x2 pooling with stride 2 and no padding, as Keras' MaxPooling2D/AveragePooling2D(2)."""

    def __init__(self, kind: str):
        super().__init__()
        self.op = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        return self.op(x, ksize=2, strides=2, padding="VALID")


class BatchNorm(tf.Module):
    """Normalise the last axis by batch statistics in training and moving ones otherwise."""

    def __init__(self, channels: int, momentum: float):
        super().__init__()
        self.momentum = momentum
        self.gamma = tf.Variable(tf.ones([channels]), name="gamma")
        self.beta = tf.Variable(tf.zeros([channels]), name="beta")
        # Under a distribution strategy each replica updates its own statistics from its
        # share of the batch; reading them outside a replica averages the replicas.
        sync = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.MEAN)
        self.moving_mean = tf.Variable(tf.zeros([channels]), name="moving_mean", **sync)
        self.moving_variance = tf.Variable(tf.ones([channels]), name="moving_variance", **sync)

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        dtype = x.dtype
        x = tf.cast(x, tf.float32)  # statistics in float32, as Keras does under mixed precision
        if training:
            mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
            # Keras' update, term for term, so the moving statistics track alike.
            self.moving_mean.assign(
                self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return tf.cast(tf.nn.batch_normalization(x, mean, variance, offset=self.beta,
                                                 scale=self.gamma, variance_epsilon=BN_EPSILON),
                       dtype)


class Block(tf.Module):
    """Dense or Conv (bias-free under BatchNorm), then BatchNorm if asked, then activation."""

    def __init__(self, linear: Dense | Conv, channels: int, spec: FFNSpec | CNNSpec):
        super().__init__()
        self.linear = linear
        self.norm = BatchNorm(channels, spec.batch_norm_momentum) if spec.batch_norm else None
        self.activation = spec.activation

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        x = self.linear(x)
        if self.norm is not None:
            x = self.norm(x, training)
        return ACTIVATIONS[self.activation](x)


class FFN(tf.Module):
    """Per hidden width Dense → [BatchNorm] → activation → [Dropout]; then Dense(10)."""

    def __init__(self, spec: FFNSpec, seed: int, compute_dtype: str = "float32"):
        super().__init__(name="ffn_tf")
        self.spec, self.compute_dtype = spec, compute_dtype
        self.rng = tf.random.Generator.from_seed(seed)
        widths = (IMAGE_SIDE * IMAGE_SIDE, *spec.hidden)
        self.blocks = [
            Block(Dense(n_in, n_out, layer_seed(seed, i), use_bias=not spec.batch_norm),
                  n_out, spec)
            for i, (n_in, n_out) in enumerate(zip(widths, widths[1:]))]
        self.logits = Dense(widths[-1], NUM_CLASSES, layer_seed(seed, len(spec.hidden)))

    def __call__(self, x, training: bool) -> tf.Tensor:
        x = tf.cast(x, self.compute_dtype)
        for block in self.blocks:
            x = dropout(block(x, training), self.spec.dropout, training, self.rng)
        return self.logits(tf.cast(x, tf.float32))  # logits and softmax stay float32


class CNN(tf.Module):
    """Conv blocks (`cnn.conv_blocks`), each dropped out; Flatten; Dense blocks; logits."""

    def __init__(self, spec: CNNSpec, seed: int, compute_dtype: str = "float32"):
        super().__init__(name="cnn_tf")
        self.spec, self.compute_dtype = spec, compute_dtype
        self.rng = tf.random.Generator.from_seed(seed)
        seeds = (layer_seed(seed, i) for i in itertools.count())
        use_bias = not spec.batch_norm
        self.conv_blocks = []
        channels = 1
        for plan in cnn.conv_blocks(spec):
            block = []
            for layer in plan:
                if isinstance(layer, cnn.Pool):
                    block.append(Pool(layer.kind))
                    continue
                conv = Conv(layer.kernel, channels, layer.filters, next(seeds), use_bias,
                            layer.stride, layer.padding(spec))
                block.append(Block(conv, layer.filters, spec))
                channels = layer.filters
            self.conv_blocks.append(block)
        side, channels = cnn.feature_shape(spec)
        widths = (side * side * channels, *spec.dense)
        self.dense_blocks = [
            Block(Dense(n_in, n_out, next(seeds), use_bias), n_out, spec)
            for n_in, n_out in zip(widths, widths[1:])]
        self.logits = Dense(widths[-1], NUM_CLASSES, next(seeds))

    def __call__(self, x, training: bool) -> tf.Tensor:
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, IMAGE_SIDE, IMAGE_SIDE, 1])
        for block in self.conv_blocks:
            for layer in block:
                x = layer(x, training)
            x = dropout(x, self.spec.dropout, training, self.rng)
        # Row-major over (height, width, channels), the order of Keras' Flatten.
        x = tf.reshape(x, [-1, math.prod(x.shape[1:])])
        for block in self.dense_blocks:
            x = dropout(block(x, training), self.spec.dense_dropout, training, self.rng)
        return self.logits(tf.cast(x, tf.float32))  # logits and softmax stay float32


class LSTMLayer(tf.Module):
    """One LSTM over the time axis, Keras' gate order (input, forget, cell, output)."""

    def __init__(self, fan_in: int, units: int, kernel_seed: int, recurrent_seed: int):
        super().__init__()
        self.units = units
        self.kernel = tf.Variable(glorot_uniform((fan_in, 4 * units), kernel_seed),
                                  name="kernel")
        self.recurrent_kernel = tf.Variable(orthogonal((units, 4 * units), recurrent_seed),
                                            name="recurrent_kernel")
        # Forget-gate bias 1 (Keras' unit_forget_bias): remember by default early on.
        self.bias = tf.Variable(tf.concat([tf.zeros([units]), tf.ones([units]),
                                           tf.zeros([2 * units])], 0), name="bias")

    def __call__(self, x: tf.Tensor, return_sequences: bool) -> tf.Tensor:
        kernel, recurrent = (tf.cast(w, x.dtype) for w in (self.kernel, self.recurrent_kernel))
        bias = tf.cast(self.bias, x.dtype)
        h = c = tf.zeros([tf.shape(x)[0], self.units], x.dtype)
        outputs = []
        for t in range(x.shape[1]):  # a fixed 28 steps: unrolled, as Keras' cell does them
            z = tf.matmul(x[:, t], kernel) + tf.matmul(h, recurrent) + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outputs.append(h)
        return tf.stack(outputs, axis=1) if return_sequences else h


class LSTM(tf.Module):
    """Image rows as 28 time steps; LSTM layers, each dropped out; relu Dense layers; logits."""

    def __init__(self, spec: LSTMSpec, seed: int, compute_dtype: str = "float32"):
        super().__init__(name="lstm_tf")
        self.spec, self.compute_dtype = spec, compute_dtype
        self.rng = tf.random.Generator.from_seed(seed)
        seeds = (layer_seed(seed, i) for i in itertools.count())
        sizes = (IMAGE_SIDE, *spec.units)
        self.recurrent = [LSTMLayer(n_in, n_out, next(seeds), next(seeds))
                          for n_in, n_out in zip(sizes, sizes[1:])]
        widths = (spec.units[-1], *spec.dense)
        self.dense = [Dense(n_in, n_out, next(seeds)) for n_in, n_out in zip(widths, widths[1:])]
        self.logits = Dense(widths[-1], NUM_CLASSES, next(seeds))

    def __call__(self, x, training: bool) -> tf.Tensor:
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, IMAGE_SIDE, IMAGE_SIDE])
        for k, layer in enumerate(self.recurrent):
            x = layer(x, return_sequences=k < len(self.recurrent) - 1)
            x = dropout(x, self.spec.dropout, training, self.rng)
        for layer in self.dense:
            x = dropout(tf.nn.relu(layer(x)), self.spec.dropout, training, self.rng)
        return self.logits(tf.cast(x, tf.float32))  # logits and softmax stay float32


def build_ffn(spec: FFNSpec, seed: int, compute_dtype: str = "float32") -> FFN:
    """The plain-TF FFN for `spec`, initialised from `seed`."""
    return FFN(spec, seed, compute_dtype)


def build_cnn(spec: CNNSpec, seed: int, compute_dtype: str = "float32") -> CNN:
    """The plain-TF CNN for `spec`, initialised from `seed`."""
    return CNN(spec, seed, compute_dtype)


def build_lstm(spec: LSTMSpec, seed: int, compute_dtype: str = "float32") -> LSTM:
    """The plain-TF LSTM for `spec`, initialised from `seed`."""
    return LSTM(spec, seed, compute_dtype)


def count_params(module: tf.Module) -> int:
    """Trainable plus non-trainable values, what Keras' `model.count_params()` reports."""
    return sum(v.shape.num_elements() for v in module.variables)
