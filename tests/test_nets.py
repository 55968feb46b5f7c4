"""Both net styles: pinned parameter counts, one architecture, shapes, BatchNorm and seeding."""

import ast
import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from job.config import CNNSpec, FFNSpec, LSTMSpec
from job.styles.keras import nets as keras_nets
from job.styles.tf import nets as tf_nets

# FFN 784-512-256-10, no BatchNorm: every Dense has kernel and bias.
#   (784*512 + 512) + (512*256 + 256) + (256*10 + 10) = 401_920 + 131_328 + 2_570 = 535_818
# With BatchNorm a hidden Dense drops its bias and each unit gains gamma, beta, moving
# mean and moving variance:
#   (784*512 + 4*512) + (512*256 + 4*256) + 2_570 = 403_456 + 132_096 + 2_570 = 538_122
# CNN 3x3 convs 32,32 | pool | 64,64 | pool → 7*7*64 = 3_136 → Dense 256 → 10.
# With BatchNorm (the default), 4 values per channel or unit instead of a bias:
#   convs (9*1*32 + 4*32) + (9*32*32 + 4*32) + (9*32*64 + 4*64) + (9*64*64 + 4*64)
#         = 416 + 9_344 + 18_688 + 37_120 = 65_568
#   dense 3_136*256 + 4*256 = 803_840; logits 256*10 + 10 = 2_570; total 871_978
# Without BatchNorm, one bias per channel or unit:
#   convs (288 + 32) + (9_216 + 32) + (18_432 + 64) + (36_864 + 64) = 64_992
#   dense 802_816 + 256 = 803_072; logits 2_570; total 870_634
# Chris Deotte's best single MNIST CNN, 32C3-32C3-32C5S2-64C3-64C3-64C5S2-128C4: "valid"
# 3x3 convs and "same" strided 5x5 ones take the side 28 → 26 → 24 → 12 → 10 → 8 → 4 → 1,
# so Flatten holds 128 values. Bias-free convs, 4 BatchNorm values per channel, logits:
DEOTTE = CNNSpec(blocks=("32C3-32C3-32C5S2", "64C3-64C3-64C5S2", "128C4"), padding="valid",
                 dense=(), dropout=0.4)
DEOTTE_SIDES = [26, 24, 12, 10, 8, 4, 1]
DEOTTE_PARAMS = (3*3*1*32 + 3*3*32*32 + 5*5*32*32 + 3*3*32*64 + 3*3*64*64 + 5*5*64*64
                 + 4*4*64*128 + 4 * (3*32 + 3*64 + 128) + 128*10 + 10)
assert DEOTTE_PARAMS == 323_872 + 1_664 + 1_290 == 326_826
PINNED = [
    (FFNSpec(), 535_818),
    (FFNSpec(batch_norm=True), 538_122),
    (CNNSpec(), 871_978),
    (CNNSpec(batch_norm=False), 870_634),
    (DEOTTE, DEOTTE_PARAMS),
]

# Small specs that between them try every option once.
VARIANTS = [
    FFNSpec(hidden=(64,), activation="tanh", dropout=0.0),
    FFNSpec(hidden=(32, 16, 8), activation="gelu", batch_norm=True, dropout=0.5),
    CNNSpec(filters=(8,), convs_per_block=1, pooling="avg", dense=(16,), activation="elu"),
    CNNSpec(filters=(4, 8), kernel_size=5, pooling="none", batch_norm=False, dropout=0.0,
            dense=(), activation="sigmoid"),
    # Three pools floor 28 → 14 → 7 → 3.
    CNNSpec(filters=(4, 4, 8), convs_per_block=1, dense=(8, 8), dense_dropout=0.0,
            activation="gelu"),
    DEOTTE,
    # Strided "same" convs whose padding is odd, so split unevenly (TF puts the extra row
    # and column at the bottom right): 28 → 14 → P2 7 → 4 (pad 1+2) → 2 (pad 0+1) → 1 (S3).
    CNNSpec(blocks=("6C4S2-P2", "8C4S2-8C3S2", "4C2S3"), dense=(8,), batch_norm=False),
    # "valid" convs with pools inside the blocks: 28 → 26 → P2 13 → 11 → 10 → AP2 5.
    CNNSpec(blocks=("4C3-P2", "8C3-8C2-AP2"), padding="valid", dense=(8,), activation="tanh"),
    # The uniform keys with "valid" padding: 28 → 24 → 20 → 10 → 6 → 2 → 1.
    CNNSpec(filters=(4, 8), kernel_size=5, padding="valid", dense=()),
]


def build_both(spec, seed: int = 0):
    """The Keras model and the TF module for `spec`."""
    if isinstance(spec, FFNSpec):
        return keras_nets.build_ffn(spec, seed), tf_nets.build_ffn(spec, seed)
    return keras_nets.build_cnn(spec, seed), tf_nets.build_cnn(spec, seed)


def tf_layers(net) -> list[tf.Module]:
    """The TF net's Dense, Conv, BatchNorm and LSTM modules in build order."""
    if isinstance(net, tf_nets.LSTM):
        return [*net.recurrent, *net.dense, net.logits]
    if isinstance(net, tf_nets.FFN):
        blocks = list(net.blocks)
    else:
        blocks = [b for convs in net.conv_blocks for b in convs if isinstance(b, tf_nets.Block)]
        blocks += list(net.dense_blocks)
    layers = [m for b in blocks for m in (b.linear, b.norm) if m is not None]
    return layers + [net.logits]


def by_name(variables) -> dict[str, np.ndarray]:
    """Variable values keyed by their last name part ("kernel", "moving_mean", ...)."""
    return {v.name.split("/")[-1].split(":")[0]: np.asarray(v.numpy()) for v in variables}


def assert_same_weights(model, net) -> None:
    """Layer by layer, the Keras model and the TF net hold identical variables."""
    keras_layers = [layer for layer in model.layers if layer.weights]
    assert len(keras_layers) == len(tf_layers(net))
    for keras_layer, tf_layer in zip(keras_layers, tf_layers(net)):
        expected, actual = by_name(keras_layer.weights), by_name(tf_layer.variables)
        assert expected.keys() == actual.keys(), keras_layer.name
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def pixels(batch: int = 4, seed: int = 0) -> np.ndarray:
    """A batch of random images, flattened and scaled to [0, 1]."""
    return np.random.default_rng(seed).random((batch, 784), dtype=np.float32)


@pytest.mark.parametrize("spec, expected", PINNED, ids=lambda p: repr(p)[:40])
def test_parameter_counts_are_pinned_in_both_styles(spec, expected):
    model, net = build_both(spec)
    assert model.count_params() == expected
    assert tf_nets.count_params(net) == expected


@pytest.mark.parametrize("spec", VARIANTS, ids=repr)
def test_styles_build_the_same_net_from_any_spec(spec):
    model, net = build_both(spec, seed=7)
    assert tf_nets.count_params(net) == model.count_params()
    assert_same_weights(model, net)
    x = pixels()
    np.testing.assert_allclose(net(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", [
    FFNSpec(hidden=(32, 16), batch_norm=True, dropout=0.0),
    CNNSpec(filters=(4, 8), dense=(16,), dropout=0.0, dense_dropout=0.0),
    dataclasses.replace(DEOTTE, dropout=0.0),
], ids=repr)
def test_styles_agree_in_training_mode_batch_norm_included(spec):
    model, net = build_both(spec)
    x = pixels(8)
    np.testing.assert_allclose(net(x, training=True), model(x, training=True),
                               rtol=1e-5, atol=1e-5)
    keras_stats = [w for w in model.non_trainable_weights]
    tf_stats = [v for layer in tf_layers(net) for v in layer.variables if not v.trainable]
    assert len(keras_stats) == len(tf_stats) > 0
    for expected, actual in zip(keras_stats, tf_stats):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def default_nets():
    """Each style's FFN and CNN from the default specs, built once for this module."""
    return {"ffn": build_both(FFNSpec()), "cnn": build_both(CNNSpec())}


@pytest.mark.parametrize("arch", ["ffn", "cnn"])
@pytest.mark.parametrize("training", [False, True])
def test_both_styles_output_logits_per_image(default_nets, arch, training):
    model, net = default_nets[arch]
    x = pixels(3)
    assert tuple(model(x, training=training).shape) == (3, 10)
    assert tuple(net(x, training=training).shape) == (3, 10)


def test_tf_nets_use_no_keras():
    source = Path(tf_nets.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not [m for m in imported if "keras" in m]
    assert "tf.keras" not in source
    net = tf_nets.build_cnn(CNNSpec(filters=(4,), dense=(8,)), seed=0)
    assert all(not type(m).__module__.startswith("keras") for m in net.submodules)
    assert all(isinstance(v, tf.Variable) and "keras" not in type(v).__module__
               for v in net.variables)


@pytest.mark.parametrize("build, spec", [
    (tf_nets.build_ffn, FFNSpec(hidden=(16,), batch_norm=True)),
    (tf_nets.build_cnn, CNNSpec(filters=(4,), dense=(8,))),
])
def test_tf_batch_norm_moves_its_statistics_only_in_training(build, spec):
    net = build(spec, seed=0)
    stats = [v for v in net.variables if not v.trainable]
    initial = [v.numpy().copy() for v in stats]
    net(pixels(), training=False)
    for v, before in zip(stats, initial):
        np.testing.assert_array_equal(v.numpy(), before)
    tf.function(lambda x: net(x, training=True))(pixels())
    for v, before in zip(stats, initial):
        assert not np.array_equal(v.numpy(), before), v.name


def test_tf_dropout_draws_new_masks_each_step_also_under_tf_function():
    net = tf_nets.build_ffn(FFNSpec(hidden=(64,), dropout=0.5), seed=0)
    train_step = tf.function(lambda x: net(x, training=True))
    x = pixels()
    assert not np.array_equal(train_step(x), train_step(x))
    assert not np.array_equal(net(x, training=True), net(x, training=True))
    np.testing.assert_array_equal(net(x, training=False), net(x, training=False))


def test_keras_skips_dropout_layers_at_rate_zero():
    model = keras_nets.build_ffn(FFNSpec(hidden=(8, 8), dropout=0.0), seed=0)
    assert not [layer for layer in model.layers if "dropout" in layer.name]


@pytest.mark.parametrize("style", [keras_nets, tf_nets])
def test_same_seed_gives_same_initial_weights(style):
    spec = CNNSpec(filters=(4,), dense=(8,))
    first, second, other = (style.build_cnn(spec, seed) for seed in (3, 3, 4))
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    kernels = [v.numpy() for v in first.variables if "kernel" in v.name]
    other_kernels = [v.numpy() for v in other.variables if "kernel" in v.name]
    assert all(not np.array_equal(a, b) for a, b in zip(kernels, other_kernels))


@pytest.mark.parametrize("build", [keras_nets.build_cnn, tf_nets.build_cnn])
def test_four_pooled_blocks_leave_one_pixel_per_channel(build):
    # 28 -> 14 -> 7 -> 3 -> 1: the deepest spec the config accepts still builds, and its
    # Flatten holds one value per channel of the last block. 1x1 convs: (1*2 + 2) for the
    # first, (2*2 + 2) for each of the other three = 22; Dense(4) after a 2-wide Flatten
    # 2*4 + 4 = 12; logits 4*10 + 10 = 50; in all 84.
    spec = CNNSpec(filters=(2, 2, 2, 2), convs_per_block=1, kernel_size=1, batch_norm=False,
                   dense=(4,))
    net = build(spec, seed=0)
    count = net.count_params() if hasattr(net, "count_params") else tf_nets.count_params(net)
    assert count == 84


# LSTM over 28 steps of 28 pixels: per layer kernel (in, 4u), recurrent kernel (u, 4u) and
# bias (4u), i.e. 4*(u*(in + u) + u); then Dense layers and the logits.
#   LSTMSpec(): 4*(128*(28 + 128) + 128) = 4*20_096 = 80_384; logits 128*10 + 10 = 1_290;
#   total 81_674
LSTM_PINNED = 81_674
LSTM_VARIANTS = [
    LSTMSpec(units=(8,), dropout=0.0),
    LSTMSpec(units=(8, 6), dense=(5,), dropout=0.5),   # 4*(8*36+8) + 4*(6*14+6) + 35 + 60
    LSTMSpec(units=(4, 4, 4), dense=(6, 3)),
]


def test_lstm_parameter_count_is_pinned_in_both_styles():
    model, net = keras_nets.build_lstm(LSTMSpec(), 0), tf_nets.build_lstm(LSTMSpec(), 0)
    assert model.count_params() == tf_nets.count_params(net) == LSTM_PINNED


@pytest.mark.parametrize("spec", LSTM_VARIANTS)
def test_lstm_styles_start_identical(spec):
    """Same parameter count, the same variables bit for bit, the same inference logits."""
    model, net = keras_nets.build_lstm(spec, 7), tf_nets.build_lstm(spec, 7)
    assert model.count_params() == tf_nets.count_params(net)
    assert_same_weights(model, net)
    x = pixels(3)
    np.testing.assert_allclose(net(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-6)


def test_keras_model_with_numpy_draws_saves_and_loads(tmp_path):
    """The registered initializers survive a .keras file: it loads, holding the same values."""
    model = keras_nets.build_lstm(LSTMSpec(units=(4,), dense=(3,)), 5)
    model.save(tmp_path / "lstm.keras")
    loaded = keras.models.load_model(tmp_path / "lstm.keras", compile=False)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_lstm_recurrent_kernel_is_orthogonal_with_forget_bias_one():
    layer = tf_nets.build_lstm(LSTMSpec(units=(8,)), 0).recurrent[0]
    w = layer.recurrent_kernel.numpy()                     # (8, 32): orthonormal rows
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(layer.bias.numpy(), [0] * 8 + [1] * 8 + [0] * 16)


@pytest.mark.parametrize("training", [False, True])
def test_lstm_outputs_logits_per_image_in_both_styles(training):
    spec = LSTMSpec(units=(8, 8), dense=(4,))
    model, net = keras_nets.build_lstm(spec, 0), tf_nets.build_lstm(spec, 0)
    x = pixels(3)
    assert tuple(model(x, training=training).shape) == (3, 10)
    assert tuple(net(x, training=training).shape) == (3, 10)
    assert net(tf.cast(x, tf.float16), training=training).dtype == tf.float32


def test_lstm_dropout_acts_only_in_training():
    spec = LSTMSpec(units=(16,), dropout=0.5)
    model, net = keras_nets.build_lstm(spec, 0), tf_nets.build_lstm(spec, 0)
    x = pixels()
    for run in (lambda t: model(x, training=t), lambda t: net(x, training=t),
                tf.function(lambda t: net(x, training=t))):
        np.testing.assert_array_equal(run(False), run(False))
        assert not np.array_equal(run(True), run(True))
