"""arch.cnn.blocks: Deotte's notation parsed into one plan, the same side chain in every
style, and the published net trains a step in each (counts and logits: test_nets*.py)."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from test_nets import DEOTTE, DEOTTE_SIDES, pixels

from job.config import CNNSpec
from job.config.cnn import Conv, Pool, conv_blocks, feature_shape, parse_block
from job.styles.keras import nets as keras_nets
from job.styles.tf import nets as tf_nets
from job.styles.torch import nets as torch_nets


@pytest.mark.parametrize("text, layers", [
    ("32C3-32C3-32C5S2", (Conv(32, 3), Conv(32, 3), Conv(32, 5, 2))),
    ("128C4", (Conv(128, 4),)),
    ("8C3-P2-16C5S1-AP2", (Conv(8, 3), Pool("max"), Conv(16, 5), Pool("avg"))),
    (" 8C3 - P2 ", (Conv(8, 3), Pool("max"))),
])
def test_blocks_parse_into_layers(text, layers):
    assert parse_block(text) == layers


@pytest.mark.parametrize("text, message", [
    ("64X3", '"64X3" is not a layer like 32C3, 32C5S2, P2 or AP2'),
    ("32C3-P3", '"P3" is not a layer like'),
    ("32C3--32C3", '"" is not a layer like'),
    ("32c3", '"32c3" is not a layer like'),
    ("0C3", '"0C3" holds a 0; filters, kernel and stride are each at least 1'),
    ("8C3S0", '"8C3S0" holds a 0'),
    ("P2-AP2", '"P2-AP2" has no convolution; every block needs one (e.g. 32C3-P2)'),
])
def test_what_is_no_block_is_refused(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_block(text)


def test_uniform_keys_make_the_same_kind_of_plan():
    assert conv_blocks(CNNSpec()) == ((Conv(32, 3), Conv(32, 3), Pool("max")),
                                      (Conv(64, 3), Conv(64, 3), Pool("max")))
    assert conv_blocks(CNNSpec(filters=(8,), convs_per_block=1, kernel_size=5,
                               pooling="none")) == ((Conv(8, 5),),)


@pytest.mark.parametrize("spec, shape", [
    (CNNSpec(), (7, 64)),                                              # 28 → 14 → 7
    (DEOTTE, (1, 128)),
    (CNNSpec(filters=(4, 8), kernel_size=5, padding="valid"), (1, 8)),  # 24 20 10 6 2 1
    (CNNSpec(blocks=("4C4S2", "6C3S2-AP2")), (3, 6)),                   # 14 → 7 → 3
])
def test_feature_shape_is_what_flatten_receives(spec, shape):
    assert feature_shape(spec) == shape


def test_published_net_takes_the_side_28_to_1_in_every_style():
    model = keras_nets.build_cnn(DEOTTE, 0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.output.shape[1] for layer in convs] == DEOTTE_SIDES
    net, x = tf_nets.build_cnn(DEOTTE, 0), tf.reshape(pixels(2), [-1, 28, 28, 1])
    sides = []
    for layer in (layer for block in net.conv_blocks for layer in block):
        x = layer(x, training=False)
        sides.append(x.shape[1])
    assert sides == DEOTTE_SIDES
    sides = []
    torch_net = torch_nets.build_cnn(DEOTTE, 0).eval()
    for module in torch_net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, args, out: sides.append(out.shape[-1]))
    with torch.no_grad():
        torch_net(torch.from_numpy(pixels(2)))
    assert sides == DEOTTE_SIDES


LABELS = np.arange(8) % 10


def test_published_net_trains_a_step_in_keras():
    model = keras_nets.build_cnn(DEOTTE, 0)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in model.trainable_weights]
    assert np.isfinite(model.train_on_batch(pixels(8), LABELS))
    assert all(not np.array_equal(w.numpy(), b)
               for w, b in zip(model.trainable_weights, before))


def test_published_net_trains_a_step_in_tf():
    net = tf_nets.build_cnn(DEOTTE, 0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            LABELS, net(pixels(8), training=True)))
    grads = tape.gradient(loss, net.trainable_variables)
    assert np.isfinite(loss.numpy()) and len(grads) == len(net.trainable_variables)
    assert all(g is not None and np.any(g.numpy()) for g in grads)


@pytest.mark.filterwarnings("ignore:CUDA initialization")   # no GPU here; torch says so
def test_published_net_trains_a_step_in_torch():
    net = torch_nets.build_cnn(DEOTTE, 0).train()
    loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(pixels(8))),
                                             torch.from_numpy(LABELS))
    loss.backward()
    params = torch_nets.trained_parameters(net)
    assert torch.isfinite(loss) and all(p.grad is not None and p.grad.any() for p in params)
