"""Square Attack: Andriushchenko, Croce, Flammarion & Hein 2020, "Square attack: a query-efficient
black-box adversarial attack via random search".

Gradient-free: random square-shaped updates at the corners of the L-inf ball, kept when they lower
the margin loss. It needs no gradient, so it is the check for gradient masking: if it beats the
white-box attacks, their gradients were misleading. Oblivious. torchattacks' implementation.
Default: 5,000 queries, one restart, p_init 0.8 (AutoAttack's budget).

    atk = build(model, 0.3, queries=5000)
"""

from __future__ import annotations

from .base import Attack, float32_passes, seeded

DEFAULT_QUERIES = 5000


def make(model, eps: float, queries: int):
    """torchattacks' Square, seeded from the caller's RNG (see ``base.seeded``), its passes in float32
    wherever it runs (alone, or inside AutoAttack under bfloat16 passes): its random search keeps a
    candidate when the margin falls at all, often by less than bfloat16 resolves."""
    import torchattacks

    return float32_passes(seeded(torchattacks.Square(model, norm="Linf", eps=eps, n_queries=queries, n_restarts=1,
                                                     p_init=0.8, loss="margin")))


def build(model, eps: float, *, queries: int | None = None, **_) -> Attack:
    queries = queries or DEFAULT_QUERIES
    return Attack("square", eps, make(model, eps, queries), False, queries, model, f"{queries} queries, 1 restart")
