"""A score that gives the attacks another gradient for a score that has none, and is otherwise that
score: the base of :mod:`.estimated_gradient` and :mod:`.fitted_surrogate`."""

from __future__ import annotations

from .scores import Score


def evaluate_real(scorer: Score, model, x):
    """(the real score, the logits) of x from ``scorer``: its ``evaluate_real`` where it has one (a
    score carrying a surrogate or a stand-in gradient), else its ``evaluate``; never a surrogate."""
    if hasattr(scorer, "evaluate_real"):
        return scorer.evaluate_real(model, x)
    return scorer.evaluate(model, x)


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
        return evaluate_real(self.inner, model, x)

    def fit(self, model, x, batch_size: int = 500) -> None:
        self.inner.fit(model, x, batch_size)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def to(self, device):
        self.inner = self.inner.to(device)
        return self
