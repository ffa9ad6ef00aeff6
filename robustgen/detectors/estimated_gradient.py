"""A gradient for a score that has none, estimated from the score's own values.

A score with rounding, filtering or JPEG inside has a zero, missing or misleading input gradient, so
every gradient attack that knows the detector stalls, and the detector looks robust when it is not
(gradient masking, Athalye et al. 2018). When the gradient check (``evaluation.gradients``) finds
that and no surrogate was given, the attacks follow this estimate instead.

Detectors of adversarial inputs read the classifier, so their score moves with its logits. The
estimate takes the directions in which the logits move fastest, the input gradients u_k of the K
largest logits (normalised; K <= 10), measures the score's central finite difference along each,

    d_k = (s(x + h u_k) - s(x - h u_k)) / (2 h)

and returns the vector g in their span whose directional derivatives are d (g = U (U^T U)^-1 d):
exact (as h -> 0) for a score that is any function of the logits, a projection for one that is not.
h is an L2 step: 0.1, the best of 0.02-0.5 on fast-mnist's PGD examples with 1 - max softmax rounded
to 0.01 near its threshold (cosine 0.66 with the unrounded score's gradient, 0.64 where the score is
0.05-0.6; random-direction NES with 16 pairs: 0.11 and 0.05; benchmarks/gradient_estimate.py). Where
every difference of an input is zero (a flat step) h grows 4x, at most three times. The cost per
gradient: K backward passes of the classifier and 2K evaluations of the score. The value is the real
score's, and success is always judged by the real score.
"""

from __future__ import annotations

import torch

from .wrapped_score import WrappedScore

K = 10  # logit directions (the largest logits)
H = 0.1  # L2 length of the finite-difference step
GROW, TRIES = 4.0, 3  # where all differences are zero: a longer step, at most this many times


def span_gradient(fn, model, x: torch.Tensor, k: int = K, h: float = H) -> torch.Tensor:
    """The estimate described above for a batch x (N, C, H, W) -> (N, C, H, W)."""
    x = x.detach()
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        logits = model(xg)
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices  # (N, K)
        rows = [torch.autograd.grad(logits.gather(1, top[:, j:j + 1]).sum(), xg, retain_graph=j < top.shape[1] - 1)[0]
                for j in range(top.shape[1])]
    u = torch.stack([r.flatten(1) for r in rows], dim=1)  # (N, K, D)
    u = u / u.norm(dim=2, keepdim=True).clamp_min(1e-12)
    n, kk = u.shape[:2]
    d = torch.zeros(n, kk, device=x.device)
    step = torch.full((n,), h, device=x.device)
    todo = torch.ones(n, dtype=torch.bool, device=x.device)
    with torch.no_grad():
        for _ in range(TRIES + 1):
            idx = todo.nonzero()[:, 0]
            for j in range(kk):
                v = u[idx, j].view(-1, *x.shape[1:]) * step[idx].view(-1, *([1] * (x.dim() - 1)))
                d[idx, j] = (fn((x[idx] + v).clamp(0, 1)) - fn((x[idx] - v).clamp(0, 1))) / (2 * step[idx])
            todo = todo & (d == 0).all(dim=1)
            if not todo.any():
                break
            step = torch.where(todo, step * GROW, step)
        gram = u @ u.transpose(1, 2) + 1e-6 * torch.eye(kk, device=x.device)
        a = torch.linalg.solve(gram, d.unsqueeze(2))  # (N, K, 1)
        return (u.transpose(1, 2) @ a).squeeze(2).view_as(x)


class _Estimated(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, value, fn, model):
        ctx.save_for_backward(x)
        ctx.fn, ctx.model = fn, model
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        g = span_gradient(ctx.fn, ctx.model, x)
        return grad_out.view(-1, *([1] * (x.dim() - 1))) * g, None, None, None


class EstimatedGradient(WrappedScore):
    """``inner``'s value with a gradient estimated from its values (for the attacks); ``surrogate``
    names it in reports. Everything else (fit, state, names) is the inner score's."""

    surrogate = "estimated"

    def evaluate(self, model, x):
        if not torch.is_grad_enabled() or not x.requires_grad:
            return self.evaluate_real(model, x)
        value, logits = self.evaluate_real(model, x)  # the logits keep their graph for the attack's classifier gradient
        fn = lambda z: self.evaluate_real(model, z)[0]  # noqa: E731 - the real score at a nearby point
        return _Estimated.apply(x, value.detach(), fn, model), logits
