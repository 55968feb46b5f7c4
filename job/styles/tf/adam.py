"""Adam in plain TensorFlow, step for step what keras.optimizers.Adam does in Keras 3.

With the same learning rate, betas and epsilon, the same variables and the same
gradients, it leaves the variables where Keras' Adam leaves them (float32 rounding
included), so the two training styles differ in their loops, not their optimizer.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf


class Adam(tf.Module):
    """Adam with Keras 3's update: bias correction folded into the step size `alpha`."""

    def __init__(self, learning_rate: float = 1e-3, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, name: str = "adam",
                 rates: np.ndarray | None = None):
        super().__init__(name=name)
        # A per-step schedule (job.train.schedule.step_rates): step i runs at rates[i], read
        # inside the compiled step, so several steps per call still change the rate per step.
        self.rates = None if rates is None else tf.constant(rates, tf.float32)
        # A variable, not a float, so a schedule can assign it between traced steps.
        self.learning_rate = tf.Variable(learning_rate, dtype=tf.float32, trainable=False,
                                         name="learning_rate")
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.momentums: list[tf.Variable] = []
        self.velocities: list[tf.Variable] = []
        self._slot_index: dict = {}

    @property
    def built(self) -> bool:
        """Whether the slot variables exist."""
        return bool(self._slot_index)

    def build(self, var_list: Sequence[tf.Variable]) -> None:
        """Create a zero momentum and velocity per variable; a second call does nothing."""
        if self.built:
            return
        for i, var in enumerate(var_list):
            self._slot_index[var.ref()] = i
            # tf.zeros, not zeros_like(var): the initial value must not read a variable
            # when build runs inside the first trace of a tf.function.
            self.momentums.append(
                tf.Variable(tf.zeros(var.shape, var.dtype), trainable=False, name="momentum"))
            self.velocities.append(
                tf.Variable(tf.zeros(var.shape, var.dtype), trainable=False, name="velocity"))

    def apply_gradients(self, grads_and_vars: Iterable[tuple],
                        apply: tf.Tensor | None = None) -> tf.Variable:
        """One Adam step on each variable with a gradient; returns the step counter.

        `apply` (a boolean tensor) skips the whole step when false, as a loss scale
        needs after an overflow. Under a distribution strategy the gradients are
        summed over replicas here, then each variable's copies are updated alike.
        """
        # Like Keras, a None gradient leaves its variable alone.
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not self.built:
            self.build([v for _, v in pairs])
        context = tf.distribute.get_replica_context()
        if context is None or not tf.distribute.has_strategy():
            return self._apply(tf.distribute.get_strategy(), pairs, apply)
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, [g for g, _ in pairs])
        return context.merge_call(self._apply,
                                  args=(list(zip(grads, [v for _, v in pairs])), apply))

    def _apply(self, strategy: tf.distribute.Strategy, pairs: list[tuple],
               apply: tf.Tensor | None) -> tf.Variable:
        """The step in cross-replica context: one update per variable and device."""
        def step() -> tf.Tensor:
            if self.rates is not None:
                rate = tf.gather(self.rates, tf.minimum(self.iterations,
                                                        tf.size(self.rates, tf.int64) - 1))
                strategy.extended.update(self.learning_rate, lambda lr: lr.assign(rate),
                                         group=False)
            count = tf.cast(self.iterations + 1, tf.float32)
            beta_1_power = tf.pow(tf.constant(self.beta_1, tf.float32), count)
            beta_2_power = tf.pow(tf.constant(self.beta_2, tf.float32), count)
            alpha = self.learning_rate * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            for grad, var in pairs:
                m, v = self._slots(var)
                # Per device, update() hands _update that device's copy of each variable.
                strategy.extended.update(var, self._update, args=(grad, alpha, m, v),
                                         group=False)
            strategy.extended.update(self.iterations, lambda it: it.assign_add(1), group=False)
            return tf.constant(True)

        if apply is None:
            step()
        else:
            tf.cond(apply, step, lambda: tf.constant(False))
        return self.iterations

    def _slots(self, var: tf.Variable) -> tuple[tf.Variable, tf.Variable]:
        """The momentum and velocity of `var`."""
        index = self._slot_index.get(var.ref())
        if index is None:
            raise ValueError(f"Adam was built for other variables than {var.name}; "
                             "make a new optimizer for a new model")
        return self.momentums[index], self.velocities[index]

    def _update(self, var: tf.Variable, grad: tf.Tensor, alpha: tf.Tensor, m: tf.Variable,
                v: tf.Variable) -> None:
        """Move one variable, in Keras' order of operations so float32 rounding agrees."""
        grad = tf.convert_to_tensor(grad, var.dtype)
        m.assign_add((grad - m) * (1 - self.beta_1))
        v.assign_add((tf.square(grad) - v) * (1 - self.beta_2))
        var.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))
