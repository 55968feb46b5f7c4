"""The FFN, CNN and LSTM with Keras layers: functional models, uncompiled (the trainer compiles).

From the same spec and seed each model has the same layers, in the same order and with
the same initial values, as `job.styles.tf.nets` creates: every kernel is the NumPy draw
of `job.train.initial` for its layer seed (through `InitialDraw`, not Keras' own seeded
initializers, whose values are TensorFlow's draws that a torch worker cannot repeat),
biases and BatchNorm take Keras' defaults. Each Dropout has its own seed too, so a
build is reproducible.
"""

from __future__ import annotations

import itertools

import keras

from job.competition import IMAGE_SIDE, NUM_CLASSES
from job.config import CNNSpec, FFNSpec, LSTMSpec, cnn
from job.train import initial
from job.train.initial import layer_seed

# Dropout seeds live far from the kernel seeds (index = layer number) of the same build.
DROPOUT_SEED_OFFSET = 500
POOLING = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}


# Registered, and described by get_config, so a saved .keras file names its initializers
# and `keras.models.load_model` rebuilds them (once this module is imported).
@keras.saving.register_keras_serializable(package="job")
class InitialDraw(keras.initializers.Initializer):
    """The kernel `job.train.initial` draws (`kind`) for a layer seed, as a Keras initializer."""

    KINDS = {"glorot_uniform": initial.glorot_uniform, "orthogonal": initial.orthogonal}

    def __init__(self, seed: int, kind: str = "glorot_uniform"):
        if kind not in self.KINDS:
            raise ValueError(f"no initial draw {kind!r}; there are {sorted(self.KINDS)}")
        self.seed, self.kind = int(seed), kind

    def __call__(self, shape, dtype=None):
        """The NumPy draw for `shape` as a tensor of the variable's dtype."""
        values = self.KINDS[self.kind](tuple(shape), self.seed)
        return keras.ops.convert_to_tensor(values, dtype=dtype or "float32")

    def get_config(self) -> dict:
        """What `from_config` needs to draw the same values again."""
        return {"seed": self.seed, "kind": self.kind}


def glorot(seed: int) -> InitialDraw:
    """The Glorot-uniform kernel `job.train.initial.glorot_uniform` draws from `seed`."""
    return InitialDraw(seed, "glorot_uniform")


def add_block(x, layer: keras.layers.Layer, spec: FFNSpec | CNNSpec):
    """Apply `layer`, then BatchNormalization if asked, then the activation."""
    x = layer(x)
    if spec.batch_norm:
        x = keras.layers.BatchNormalization(momentum=spec.batch_norm_momentum)(x)
    # The "gelu" name means Keras' exact erf form (activations.gelu, approximate=False).
    return keras.layers.Activation(spec.activation)(x)


def add_dropout(x, rate: float, seed: int):
    """Dropout with its own seed, skipped when the rate is 0."""
    return keras.layers.Dropout(rate, seed=seed)(x) if rate > 0 else x


def build_ffn(spec: FFNSpec, seed: int) -> keras.Model:
    """The Keras FFN for `spec`, initialised from `seed`."""
    inputs = keras.Input(shape=(IMAGE_SIDE * IMAGE_SIDE,), name="pixels")
    x = inputs
    for i, width in enumerate(spec.hidden):
        dense = keras.layers.Dense(width, use_bias=not spec.batch_norm,
                                   kernel_initializer=glorot(layer_seed(seed, i)))
        x = add_block(x, dense, spec)
        x = add_dropout(x, spec.dropout, layer_seed(seed, DROPOUT_SEED_OFFSET + i))
    logits = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=glorot(layer_seed(seed, len(spec.hidden))),
        name="logits", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, logits, name="ffn-keras")


def build_cnn(spec: CNNSpec, seed: int) -> keras.Model:
    """The Keras CNN for `spec`, initialised from `seed`."""
    seeds = (layer_seed(seed, i) for i in itertools.count())
    dropout_seeds = (layer_seed(seed, DROPOUT_SEED_OFFSET + i) for i in itertools.count())
    use_bias = not spec.batch_norm
    inputs = keras.Input(shape=(IMAGE_SIDE * IMAGE_SIDE,), name="pixels")
    x = keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE, 1))(inputs)
    for block in cnn.conv_blocks(spec):
        for layer in block:
            if isinstance(layer, cnn.Pool):
                x = POOLING[layer.kind](pool_size=2, strides=2)(x)
                continue
            conv = keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride,
                                       padding=layer.padding(spec), use_bias=use_bias,
                                       kernel_initializer=glorot(next(seeds)))
            x = add_block(x, conv, spec)
        x = add_dropout(x, spec.dropout, next(dropout_seeds))
    x = keras.layers.Flatten()(x)
    for width in spec.dense:
        dense = keras.layers.Dense(width, use_bias=use_bias,
                                   kernel_initializer=glorot(next(seeds)))
        x = add_block(x, dense, spec)
        x = add_dropout(x, spec.dense_dropout, next(dropout_seeds))
    logits = keras.layers.Dense(NUM_CLASSES, kernel_initializer=glorot(next(seeds)),
                                name="logits", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, logits, name="cnn-keras")


def build_lstm(spec: LSTMSpec, seed: int) -> keras.Model:
    """The Keras LSTM for `spec` (image rows as time steps), initialised from `seed`."""
    seeds = (layer_seed(seed, i) for i in itertools.count())
    dropout_seeds = (layer_seed(seed, DROPOUT_SEED_OFFSET + i) for i in itertools.count())
    inputs = keras.Input(shape=(IMAGE_SIDE * IMAGE_SIDE,), name="pixels")
    x = keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE))(inputs)
    for k, units in enumerate(spec.units):
        # unit_forget_bias spelled out although Keras' default: the other styles repeat it.
        x = keras.layers.LSTM(
            units, return_sequences=k < len(spec.units) - 1, unit_forget_bias=True,
            kernel_initializer=glorot(next(seeds)),
            recurrent_initializer=InitialDraw(next(seeds), "orthogonal"))(x)
        x = add_dropout(x, spec.dropout, next(dropout_seeds))
    for width in spec.dense:
        x = keras.layers.Dense(width, activation="relu",
                               kernel_initializer=glorot(next(seeds)))(x)
        x = add_dropout(x, spec.dropout, next(dropout_seeds))
    logits = keras.layers.Dense(NUM_CLASSES, kernel_initializer=glorot(next(seeds)),
                                name="logits", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, logits, name="lstm-keras")
