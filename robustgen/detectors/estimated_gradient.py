"""A gradient for a score that has none: estimated from the score's own values (NES, Ilyas et al.
2018, "Black-box adversarial attacks with limited queries and information"; SPSA, Uesato et al.
2018, the estimator recommended against gradient masking).

A score with rounding, filtering or JPEG inside has a zero, missing or misleading input gradient, so
every gradient attack that knows the detector stalls, and the detector looks robust when it is not.
When the gradient check (``evaluation.gradients``) finds that and no surrogate was given, the attacks
follow this estimate instead: per input, ``pairs`` antithetic Gaussian directions u at scale
``sigma`` (pixel units),

    g ~ sum_i (s(x + sigma u_i) - s(x - sigma u_i)) u_i / (2 sigma pairs)

the gradient of the score smoothed over a Gaussian of width sigma, which exists where the score is a
step function. The value is the real score's, and success is always judged by the real score.
"""

from __future__ import annotations

import torch

from .scores import Score

PAIRS = 16  # antithetic pairs per estimate: 2 * PAIRS score evaluations per gradient
SIGMA = 0.02  # smoothing scale in pixel units: wider than the steps of a score quantised to 0.01


class _Estimated(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, value, fn, pairs, sigma, generator):
        ctx.save_for_backward(x)
        ctx.fn, ctx.pairs, ctx.sigma, ctx.generator = fn, pairs, sigma, generator
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        g = torch.zeros_like(x)
        with torch.no_grad():
            for _ in range(ctx.pairs):
                u = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=ctx.generator)
                diff = ctx.fn(x + ctx.sigma * u) - ctx.fn(x - ctx.sigma * u)  # (N,)
                g += diff.view(-1, *([1] * (x.dim() - 1))) * u
        g /= 2 * ctx.sigma * ctx.pairs
        return grad_out.view(-1, *([1] * (x.dim() - 1))) * g, None, None, None, None, None


class EstimatedGradient(Score):
    """``inner``'s value with a gradient estimated from its values (for the attacks); ``surrogate``
    names it in reports. Everything else (fit, state, names) is the inner score's."""

    surrogate = "estimated"

    def __init__(self, inner: Score, pairs: int = PAIRS, sigma: float = SIGMA, seed: int = 0):
        self.inner, self.pairs, self.sigma = inner, pairs, sigma
        self.name = inner.name
        self.needs_fit, self.needs_autoencoder = inner.needs_fit, inner.needs_autoencoder
        self.needs_decoder, self.needs_features = inner.needs_decoder, inner.needs_features
        self.seed = seed

    def _real(self, model, x):
        if hasattr(self.inner, "evaluate_real"):
            return self.inner.evaluate_real(model, x)
        return self.inner.evaluate(model, x)

    def evaluate_real(self, model, x):
        return self._real(model, x)

    def evaluate(self, model, x):
        if not torch.is_grad_enabled() or not x.requires_grad:
            return self._real(model, x)
        logits = model(x)
        with torch.no_grad():
            value = self._real(model, x.detach())[0]
        generator = torch.Generator(device=x.device).manual_seed(self.seed + int(torch.randint(0, 2**31 - 1, (1,))))
        fn = lambda z: self._real(model, z.clamp(0.0, 1.0))[0]  # noqa: E731 - the score at a nearby point
        return _Estimated.apply(x, value, fn, self.pairs, self.sigma, generator), logits

    def fit(self, model, x, batch_size: int = 500) -> None:
        self.inner.fit(model, x, batch_size)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def to(self, device):
        self.inner = self.inner.to(device)
        return self
