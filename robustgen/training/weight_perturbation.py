"""Adversarial weight perturbation (AWP; Wu, Xia & Wang 2020, "Adversarial weight perturbation helps
robust generalization"): adversarial training's gradient is taken at weights pushed, layer by layer,
toward a higher loss on the attacked batch, so the model learns a flatter robust loss surface.

One step with ``adversary.awp = gamma``: attack the batch at the weights w; take the gradient g of the
classification loss on the attacked batch with respect to every weight matrix or kernel (parameters
with more than one dimension, as the authors' code: biases and norms stay; the decoder's weights, which
the classification loss does not reach, stay too); move each to
``w + gamma * ||w|| * g / ||g||``; compute the whole training loss there and its gradient; put w back;
let the optimizer step with that gradient. One forward and backward more per step.

Only tensor operations into buffers allocated once, so the step stays capturable as a CUDA graph.
"""

from __future__ import annotations

import torch


class WeightPerturbation:
    """``apply(loss)`` perturbs the model's weights along ``loss``'s gradient; ``restore()`` puts the
    saved weights back (bit for bit: they are copied, not subtracted)."""

    def __init__(self, model: torch.nn.Module, gamma: float):
        if not 0 < gamma < 1:
            raise ValueError(f"adversary.awp must lie in (0, 1), got {gamma}")
        self.gamma = gamma
        self.params = [p for p in model.parameters() if p.dim() > 1]
        self.saved = [torch.empty_like(p) for p in self.params]
        self.moved: list[tuple[torch.Tensor, torch.Tensor]] = []  # (weight, its saved copy) until restored

    def apply(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        # the decoder plays no part in the classification loss (no gradient): it is neither moved nor copied
        self.moved = [(p, w) for p, w, g in zip(self.params, self.saved, grads) if g is not None]
        with torch.no_grad():
            for (p, w), g in zip(self.moved, (g for g in grads if g is not None)):
                w.copy_(p)
                p.add_(g * (self.gamma * p.norm() / (g.norm() + 1e-12)))

    def restore(self) -> None:
        with torch.no_grad():
            for p, w in self.moved:
                p.copy_(w)
        self.moved = []
