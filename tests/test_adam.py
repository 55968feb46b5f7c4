"""The plain-TF Adam moves variables exactly as keras.optimizers.Adam does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from job.styles.tf.adam import Adam

SHAPES = [(5, 3), (3,), (3, 3, 2, 4)]
STEPS = 6


def random_arrays(rng: np.random.Generator) -> list[np.ndarray]:
    """One float32 array per shape in SHAPES."""
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def run_both(use_function: bool, change_lr_at: int | None = None, build_first: bool = False):
    """Feed the same gradients to both optimizers; return (ours, keras', our Adam, keras Adam)."""
    rng = np.random.default_rng(0)
    initial = random_arrays(rng)
    gradients = [random_arrays(rng) for _ in range(STEPS)]
    ours = [tf.Variable(a) for a in initial]
    theirs = [tf.Variable(a) for a in initial]
    adam, keras_adam = Adam(learning_rate=0.01), keras.optimizers.Adam(learning_rate=0.01)
    if build_first:
        adam.build(ours)

    def step(optimizer, variables, grads):
        optimizer.apply_gradients(zip(grads, variables))

    our_step = tf.function(step) if use_function else step
    their_step = tf.function(step) if use_function else step
    for i, grads in enumerate(gradients):
        if i == change_lr_at:
            adam.learning_rate.assign(0.002)
            keras_adam.learning_rate = 0.002
        grads = [tf.constant(g) for g in grads]
        our_step(adam, ours, grads)
        their_step(keras_adam, theirs, grads)
    return ours, theirs, adam, keras_adam


def assert_same(ours, theirs) -> None:
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("use_function", [False, True], ids=["eager", "tf.function"])
def test_matches_keras_adam(use_function):
    ours, theirs, adam, keras_adam = run_both(use_function)
    assert_same(ours, theirs)
    assert int(adam.iterations) == int(keras_adam.iterations) == STEPS
    # The variables did move, so agreeing means something.
    initial = random_arrays(np.random.default_rng(0))
    assert not any(np.allclose(v.numpy(), a) for v, a in zip(ours, initial))


@pytest.mark.parametrize("use_function", [False, True], ids=["eager", "tf.function"])
def test_learning_rate_change_takes_effect_between_steps(use_function):
    ours, theirs, _, _ = run_both(use_function, change_lr_at=3)
    assert_same(ours, theirs)


def test_building_first_is_the_same_as_building_on_first_step():
    assert_same(run_both(True, build_first=True)[0], run_both(True)[0])


def test_slots_are_zero_and_not_trainable():
    variables = [tf.Variable(tf.ones(shape)) for shape in SHAPES]
    adam = Adam()
    adam.build(variables)
    assert len(adam.momentums) == len(adam.velocities) == len(SHAPES)
    assert all(not np.any(s.numpy()) for s in adam.momentums + adam.velocities)
    assert adam.trainable_variables == ()


def test_none_gradient_leaves_its_variable_alone():
    moved, kept = tf.Variable([1.0, 2.0]), tf.Variable([3.0, 4.0])
    adam = Adam()
    adam.apply_gradients([(tf.constant([1.0, 1.0]), moved), (None, kept)])
    assert not np.array_equal(moved.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(kept.numpy(), [3.0, 4.0])
    assert int(adam.iterations) == 1


def test_unknown_variable_is_refused():
    adam = Adam()
    adam.build([tf.Variable([1.0])])
    with pytest.raises(ValueError, match="new optimizer"):
        adam.apply_gradients([(tf.constant([1.0]), tf.Variable([2.0]))])
