"""Dynamic loss scaling for the TF loop under mixed_float16, as Keras' LossScaleOptimizer.

float16 gradients of small losses underflow to zero; scaling the loss up (and the
gradients back down) keeps them representable. After an overflow the step is skipped
and the scale halved; after `growth_steps` good steps it doubles. Same defaults as
keras.optimizers.LossScaleOptimizer, so every style scales alike.
"""

from __future__ import annotations

import tensorflow as tf

from job.train.numerics import LOSS_SCALE_GROWTH_STEPS as GROWTH_STEPS
from job.train.numerics import LOSS_SCALE_INITIAL as INITIAL_SCALE


class LossScale(tf.Module):
    """The current scale and the count of finite steps since it last changed."""

    def __init__(self, initial: float = INITIAL_SCALE, growth_steps: int = GROWTH_STEPS):
        super().__init__(name="loss_scale")
        # Every replica sees the same all-reduced verdict, so the first one's value is all.
        keep_first = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.scale = tf.Variable(initial, dtype=tf.float32, name="scale", **keep_first)
        self.good_steps = tf.Variable(0, dtype=tf.int64, name="good_steps", **keep_first)
        self.growth_steps = growth_steps

    def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
        return loss * tf.cast(self.scale, loss.dtype)

    def unscale(self, grads: list[tf.Tensor]) -> list[tf.Tensor]:
        return [None if g is None else g / self.scale for g in grads]

    def update(self, grads: list[tf.Tensor]) -> tf.Tensor:
        """True when every gradient is finite on every replica; adjusts the scale."""
        bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32))
                        for g in grads if g is not None])
        context = tf.distribute.get_replica_context()
        if context is not None and tf.distribute.has_strategy():
            bad = context.all_reduce(tf.distribute.ReduceOp.SUM, bad)
        finite = tf.equal(bad, 0.0)
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_steps)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2, self.scale),
                                   self.scale / 2))
        self.good_steps.assign(tf.where(finite & ~grow, self.good_steps + 1,
                                        tf.zeros_like(self.good_steps)))
        return finite
