"""A score that gives the attacks another gradient for a score that has none, and is otherwise that
score: the base of :mod:`.estimated_gradient` and :mod:`.fitted_surrogate`."""

from __future__ import annotations

from .scores import Score


class WrappedScore(Score):
    """``inner``'s value, names, fitting and state; subclasses supply ``evaluate``'s gradient."""

    surrogate = "wrapped"

    def __init__(self, inner: Score):
        self.inner = inner
        self.name = inner.name
        self.needs_fit, self.needs_autoencoder = inner.needs_fit, inner.needs_autoencoder
        self.needs_decoder, self.needs_features = inner.needs_decoder, inner.needs_features

    def evaluate_real(self, model, x):
        """The real score and the logits (what success is judged by)."""
        if hasattr(self.inner, "evaluate_real"):
            return self.inner.evaluate_real(model, x)
        return self.inner.evaluate(model, x)

    def fit(self, model, x, batch_size: int = 500) -> None:
        self.inner.fit(model, x, batch_size)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def to(self, device):
        self.inner = self.inner.to(device)
        return self
