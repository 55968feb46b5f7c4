"""The torch loop's optimizer: Adam and dynamic loss scaling, each exactly Keras' rule.

Adam is step for step what keras.optimizers.Adam (and `job.styles.tf.adam`) does.
Not torch.optim.Adam: it adds epsilon to sqrt(v / (1 - beta_2^t)) where Keras adds it to
sqrt(v) and folds both bias corrections into the step size, so with Keras' epsilon 1e-7
the two drift apart wherever v is tiny. This is Keras' update in Keras' order of
operations, so float32 rounding agrees with the other styles as well.
"""

from __future__ import annotations

from typing import Sequence

import torch

from job.train.numerics import LOSS_SCALE_GROWTH_STEPS as GROWTH_STEPS
from job.train.numerics import LOSS_SCALE_INITIAL as INITIAL_SCALE


class Adam:
    """Adam with Keras 3's update over a fixed list of parameters."""

    def __init__(self, params: Sequence[torch.nn.Parameter], learning_rate: float = 1e-3,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        self.params = list(params)
        self.learning_rate = float(learning_rate)   # a schedule sets it between steps
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.iterations = 0
        self.momentums = [torch.zeros_like(p, memory_format=torch.preserve_format)
                          for p in self.params]
        self.velocities = [torch.zeros_like(p, memory_format=torch.preserve_format)
                           for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        """One update from the parameters' .grad; a parameter without one stays put."""
        count = torch.tensor(self.iterations + 1, dtype=torch.float32)
        beta_1_power = torch.pow(torch.tensor(self.beta_1, dtype=torch.float32), count)
        beta_2_power = torch.pow(torch.tensor(self.beta_2, dtype=torch.float32), count)
        alpha = (torch.tensor(self.learning_rate, dtype=torch.float32)
                 * torch.sqrt(1 - beta_2_power) / (1 - beta_1_power))
        for param, m, v in zip(self.params, self.momentums, self.velocities):
            if param.grad is None:
                continue
            grad = param.grad
            m.add_((grad - m) * (1 - self.beta_1))
            v.add_((grad * grad - v) * (1 - self.beta_2))
            param.sub_((m * alpha.to(m.device)) / (torch.sqrt(v) + self.epsilon))
        self.iterations += 1

    def zero_grad(self) -> None:
        """Drop the gradients of the last step (set_to_none, as torch.optim does)."""
        for param in self.params:
            param.grad = None

    def state(self) -> list:
        """Everything a checkpoint keeps, as arrays: step count, rate, moments."""
        return [torch.tensor(self.iterations), torch.tensor(self.learning_rate),
                *self.momentums, *self.velocities]

    def load_state(self, values: list) -> None:
        """Continue from `state()`'s arrays."""
        n = len(self.params)
        if len(values) != 2 + 2 * n:
            raise ValueError(f"checkpoint holds {len(values)} optimizer arrays, the model "
                             f"needs {2 + 2 * n}: the architecture changed since it was written")
        self.iterations, self.learning_rate = int(values[0]), float(values[1])
        with torch.no_grad():
            for slot, value in zip(self.momentums + self.velocities, values[2:]):
                slot.copy_(torch.as_tensor(value))


class LossScale:
    """Keras' LossScaleOptimizer rule under mixed_float16, as `job.styles.tf.loss_scale` has it
    for the TF loop (torch's GradScaler grows after 2000 steps too, but drives only a
    torch.optim optimizer): skip the step and halve the scale after an overflow, double
    it after `growth_steps` finite steps."""

    def __init__(self, initial: float = INITIAL_SCALE, growth_steps: int = GROWTH_STEPS):
        self.scale, self.good_steps, self.growth_steps = float(initial), 0, growth_steps

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.scale

    @torch.no_grad()
    def unscale(self, params: Sequence[torch.nn.Parameter]) -> bool:
        """Divide the gradients by the scale; True when all are finite. Adjusts the scale."""
        grads = [p.grad for p in params if p.grad is not None]
        for g in grads:
            g.div_(self.scale)
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        if not finite:
            self.scale, self.good_steps = self.scale / 2, 0
        elif self.good_steps + 1 >= self.growth_steps:
            self.scale, self.good_steps = self.scale * 2, 0
        else:
            self.good_steps += 1
        return finite

    def state(self) -> list:
        return [torch.tensor(self.scale), torch.tensor(self.good_steps)]

    def load_state(self, values: list) -> None:
        self.scale, self.good_steps = float(values[0]), int(values[1])
