"""The PyTorch nets start where the Keras and TF ones start: the same parameter counts,
the same values moved into torch's layouts, the same function of the pixels."""

import dataclasses

import keras
import numpy as np
import pytest
import torch

from job.config import CNNSpec, FFNSpec, LSTMSpec
from job.styles.keras import nets as keras_nets
from job.styles.tf import nets as tf_nets
from job.styles.torch import nets as torch_nets
from job.train.initial import glorot_uniform, layer_seed, orthogonal
from test_nets import DEOTTE, LSTM_PINNED, LSTM_VARIANTS, PINNED, VARIANTS, pixels

BUILD = {FFNSpec: "build_ffn", CNNSpec: "build_cnn", LSTMSpec: "build_lstm"}
# Also an even kernel, which TF pads more at the bottom right: torch's "same" must too.
EVEN_KERNEL = CNNSpec(filters=(4,), kernel_size=4, convs_per_block=2, dense=(8,),
                      batch_norm=False)


def build(module, spec, seed=0):
    return getattr(module, BUILD[type(spec)])(spec, seed)


def torch_logits(net, x: np.ndarray, training: bool = False) -> np.ndarray:
    net.train(training)
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("spec, expected", PINNED + [(LSTMSpec(), LSTM_PINNED)],
                         ids=lambda p: repr(p)[:40])
def test_parameter_counts_are_pinned(spec, expected):
    assert torch_nets.count_params(build(torch_nets, spec)) == expected


@pytest.mark.parametrize("spec", VARIANTS + LSTM_VARIANTS + [EVEN_KERNEL], ids=repr)
def test_torch_starts_with_the_keras_function(spec):
    """Same count, and the same inference logits as Keras and the TF net (~1e-5)."""
    model, tf_net, net = (build(m, spec, seed=7) for m in (keras_nets, tf_nets, torch_nets))
    assert torch_nets.count_params(net) == model.count_params()
    x = pixels(5)
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(torch_logits(net, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_logits(net, x), tf_net(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_every_style_holds_the_numpy_draws():
    """Each kernel is `job.train.initial`'s draw for its layer seed, in Keras and TF as
    drawn, in torch moved: conv HWIO → OIHW, dense (in, out) → (out, in)."""
    spec = CNNSpec(filters=(4,), convs_per_block=1, dense=(8,), batch_norm=False)
    model, tf_net, net = (build(m, spec, 3) for m in (keras_nets, tf_nets, torch_nets))
    # 3x3 conv 1 → 4 channels at 28x28, pooled to 14x14x4 = 784 features, Dense 8, logits.
    draws = [glorot_uniform(shape, layer_seed(3, i))
             for i, shape in enumerate([(3, 3, 1, 4), (784, 8), (8, 10)])]
    conv, dense, logits = [layer for layer in model.layers if layer.weights]
    tf_kernels = [tf_net.conv_blocks[0][0].linear, tf_net.dense_blocks[0].linear,
                  tf_net.logits]
    for keras_layer, tf_layer, expected in zip((conv, dense, logits), tf_kernels, draws):
        np.testing.assert_array_equal(keras_layer.kernel.numpy(), expected)
        np.testing.assert_array_equal(tf_layer.kernel.numpy(), expected)
    np.testing.assert_array_equal(net.conv_blocks[0][0].linear.weight.detach().numpy(),
                                  draws[0].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(net.dense_blocks[0].linear.weight.detach().numpy(),
                                  draws[1].T)
    np.testing.assert_array_equal(net.logits.weight.detach().numpy(), draws[2].T)
    np.testing.assert_array_equal(net.logits.bias.detach().numpy(), logits.bias.numpy())


def test_lstm_holds_keras_gates_with_one_trained_bias():
    spec = LSTMSpec(units=(8,))
    keras_lstm = next(layer for layer in build(keras_nets, spec).layers
                      if isinstance(layer, keras.layers.LSTM))
    layer = build(torch_nets, spec).recurrent[0]
    kernel, recurrent, bias = (w.numpy() for w in keras_lstm.weights)
    # Keras holds the NumPy draws: the kernel from the net's first layer seed, the
    # recurrent kernel from its second.
    np.testing.assert_array_equal(kernel, glorot_uniform((28, 32), layer_seed(0, 0)))
    np.testing.assert_array_equal(recurrent, orthogonal((8, 32), layer_seed(0, 1)))
    np.testing.assert_array_equal(layer.weight_ih_l0.detach().numpy(), kernel.T)
    np.testing.assert_array_equal(layer.weight_hh_l0.detach().numpy(), recurrent.T)
    np.testing.assert_array_equal(layer.bias_ih_l0.detach().numpy(), [0] * 8 + [1] * 8 + [0] * 16)
    assert not layer.bias_hh_l0.requires_grad and not layer.bias_hh_l0.any()


@pytest.mark.parametrize("spec", [
    FFNSpec(hidden=(32, 16), batch_norm=True, dropout=0.0),
    CNNSpec(filters=(4, 8), dense=(16,), dropout=0.0, dense_dropout=0.0),
    dataclasses.replace(DEOTTE, dropout=0.0),
], ids=repr)
def test_training_mode_batch_norm_matches_keras_and_its_moving_statistics(spec):
    """Batch statistics in training, Keras' biased-variance update of the moving ones."""
    model, net = build(keras_nets, spec), build(torch_nets, spec)
    x = pixels(8)
    # Batch statistics of 8 images divide torch's and TF's float32 rounding by a small
    # std: logits near 2 differ by 3e-6 to 1.4e-5 across build seeds 0-7, hence 3e-5.
    np.testing.assert_allclose(torch_logits(net, x, training=True),
                               model(x, training=True).numpy(), rtol=1e-5, atol=3e-5)
    expected = [w.numpy() for w in model.non_trainable_weights]
    actual = [b.numpy() for b in net.buffers()]
    assert len(actual) == len(expected) > 0
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_batch_norm_statistics_move_only_in_training():
    net = build(torch_nets, FFNSpec(hidden=(8,), batch_norm=True, dropout=0.0))
    before = [b.clone() for b in net.buffers()]
    torch_logits(net, pixels(4), training=False)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
    torch_logits(net, pixels(4), training=True)
    assert not all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


def test_dropout_draws_new_masks_from_the_nets_generator():
    spec = FFNSpec(hidden=(64,), dropout=0.5)
    x = pixels(4)
    net, twin = build(torch_nets, spec), build(torch_nets, spec)
    np.testing.assert_array_equal(torch_logits(net, x), torch_logits(net, x))
    first = torch_logits(net, x, training=True)
    assert not np.array_equal(first, torch_logits(net, x, training=True))
    # The masks are the generator's: a twin with the same seed draws the same first mask,
    # and putting a saved generator state back replays a step's masks.
    np.testing.assert_array_equal(torch_logits(twin, x, training=True), first)
    state = net.generator.get_state()
    again = torch_logits(net, x, training=True)
    net.generator.set_state(state)
    np.testing.assert_array_equal(torch_logits(net, x, training=True), again)


def test_logits_stay_float32_under_autocast():
    net = build(torch_nets, CNNSpec(filters=(4,), convs_per_block=1, dense=(8,)))
    net.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(torch.from_numpy(pixels(2)))
        hidden = net.dense_blocks[0].linear(torch.zeros(2, 4 * 14 * 14))
    assert logits.dtype == torch.float32 and hidden.dtype == torch.bfloat16


def test_weights_round_trip_and_refuse_another_architecture():
    spec = FFNSpec(hidden=(8,), batch_norm=True)
    net, other = build(torch_nets, spec, 0), build(torch_nets, spec, 1)
    torch_nets.set_weights(other, torch_nets.weights(net))
    x = pixels(3)
    np.testing.assert_array_equal(torch_logits(other, x), torch_logits(net, x))
    with pytest.raises(ValueError, match="architecture changed"):
        torch_nets.set_weights(other, torch_nets.weights(net)[:-1])
