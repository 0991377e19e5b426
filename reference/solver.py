"""SGDSolver with Caffe's exact update (``sgd_solver.cpp``).

One iteration: zero the parameter diffs; ``iter_size`` times forward + backward (diffs accumulate);
then ``apply_update``: the learning rate of the policy at ``iter`` (the number of completed updates),
optional global L2 gradient clipping, and for every learnable parameter

    diff = diff / iter_size
    diff = diff + weight_decay * decay_mult * w          (L2; L1 adds ... * sign(w))
    V    = momentum * V + rate * lr_mult * diff           (the learning rate is inside the momentum)
    w    = w - V

Policies: fixed ``base_lr``; step ``base_lr * gamma^floor(iter / stepsize)``; multistep ``base_lr *
gamma^(number of stepvalues <= iter)``; exp ``base_lr * gamma^iter``; inv ``base_lr * (1 + gamma *
iter)^-power``; poly ``base_lr * (1 - iter / max_iter)^power``; sigmoid ``base_lr / (1 + exp(-gamma *
(iter - stepsize)))``.

Worked example: w = 1, diff = 0.5, lr 0.1, momentum 0.9, weight_decay 0.1: V = 0.1 * (0.5 + 0.1) = 0.06,
w = 0.94; a second step with the same diff: V = 0.9 * 0.06 + 0.1 * (0.5 + 0.094) = 0.1134.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SGDSolver", "learning_rate"]

POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")


def learning_rate(it: int, base_lr: float, lr_policy: str = "fixed", gamma: float = 0.0,
                  power: float = 0.0, stepsize: int = 0, stepvalue=(), max_iter: int = 0) -> float:
    """The learning rate of Caffe's ``lr_policy`` after ``it`` completed updates."""
    if lr_policy == "fixed":
        return base_lr
    if lr_policy == "step":
        if stepsize <= 0:
            raise ValueError("lr_policy 'step' needs stepsize > 0")
        return base_lr * gamma ** (it // stepsize)
    if lr_policy == "multistep":
        return base_lr * gamma ** sum(1 for v in stepvalue if it >= v)
    if lr_policy == "exp":
        return base_lr * gamma ** it
    if lr_policy == "inv":
        return base_lr * (1 + gamma * it) ** (-power)
    if lr_policy == "poly":
        if max_iter <= 0:
            raise ValueError("lr_policy 'poly' needs max_iter > 0")
        return base_lr * (1 - it / max_iter) ** power
    if lr_policy == "sigmoid":
        return base_lr / (1 + math.exp(-gamma * (it - stepsize)))
    raise ValueError(f"unknown lr_policy {lr_policy!r} (one of {', '.join(POLICIES)})")


class SGDSolver:
    """Caffe's SGD solver over a :class:`reference.Net` (see module docstring).

    ``step(n, **inputs)`` feeds the same inputs to every forward; pass ``feed=callable`` instead to
    draw a new batch (a dict of inputs) for each forward, as Caffe's data layers do.
    """

    def __init__(self, net, *, base_lr: float, lr_policy: str = "fixed", gamma: float = 0.0,
                 power: float = 0.0, stepsize: int = 0, stepvalue=(), max_iter: int = 0,
                 momentum: float = 0.0, weight_decay: float = 0.0, regularization_type: str = "L2",
                 iter_size: int = 1, clip_gradients: float = -1.0, test_nets=()):
        if lr_policy not in POLICIES:
            raise ValueError(f"unknown lr_policy {lr_policy!r} (one of {', '.join(POLICIES)})")
        if regularization_type not in ("L1", "L2"):
            raise ValueError(f"regularization_type must be 'L1' or 'L2', got {regularization_type!r}")
        if int(iter_size) < 1:
            raise ValueError(f"iter_size must be >= 1, got {iter_size}")
        self.net = net
        self.test_nets = list(test_nets)
        self.base_lr, self.lr_policy, self.gamma, self.power = base_lr, lr_policy, gamma, power
        self.stepsize, self.stepvalue, self.max_iter = stepsize, tuple(stepvalue), max_iter
        self.momentum, self.weight_decay = momentum, weight_decay
        self.regularization_type = regularization_type
        self.iter_size, self.clip_gradients = int(iter_size), clip_gradients
        self.iter = 0
        self.history = {layer.name: [np.zeros_like(b) for b in layer.blobs]
                        for layer in net.layers if layer.blobs}
        self.losses = []

    def learning_rate(self) -> float:
        return learning_rate(self.iter, self.base_lr, self.lr_policy, self.gamma, self.power,
                             self.stepsize, self.stepvalue, self.max_iter)

    def _learnable(self):
        for layer in self.net.layers:
            for i, blob in enumerate(layer.blobs):
                if layer.lr_mult(i) != 0:
                    yield layer, i, blob, layer.diffs[i]

    def step(self, iters: int = 1, feed=None, callback=None, **inputs) -> float:
        """Run ``iters`` iterations; returns the last iteration's loss (mean over iter_size)."""
        if feed is not None and inputs:
            raise ValueError("step: give either feed= or inputs, not both")
        loss = float("nan")
        for _ in range(int(iters)):
            total = 0.0
            for k in range(self.iter_size):
                self.net.forward(**(feed() if feed is not None else inputs))
                self.net.backward(accumulate=k > 0)
                total += self.net.loss
            loss = total / self.iter_size
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at iteration {self.iter}: lower base_lr")
            self.apply_update()
            self.losses.append(loss)
            if callback is not None:
                callback(self.iter, loss)
        return loss

    def apply_update(self):
        """Caffe's ApplyUpdate: rate, clipping, then per parameter normalise/regularise/momentum."""
        rate = self.learning_rate()
        if self.clip_gradients >= 0:
            norm = math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2))
                                 for *_, d in self._learnable()))
            if norm > self.clip_gradients:
                for *_, d in self._learnable():
                    d *= d.dtype.type(self.clip_gradients / norm)
        for layer, i, w, diff in self._learnable():
            if self.iter_size > 1:
                diff /= diff.dtype.type(self.iter_size)
            decay = self.weight_decay * layer.decay_mult(i)
            if decay:
                diff += diff.dtype.type(decay) * (w if self.regularization_type == "L2" else np.sign(w))
            v = self.history[layer.name][i]
            v *= v.dtype.type(self.momentum)
            v += v.dtype.type(rate * layer.lr_mult(i)) * diff
            w -= v
        self.iter += 1
