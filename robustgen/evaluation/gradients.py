"""Before attacking: does each score have a usable gradient with respect to the input?

A detector-aware attack follows the score's gradient. A score with rounding, filtering or JPEG
inside may have none (missing, zero, NaN) or one that points nowhere near where the score changes
(far from a finite-difference estimate): gradient masking (Athalye et al. 2018), which would make
the attacks, not the detector, look weak. Each score is checked on a few clean validation images:

- ``missing``: no gradient reaches the input (detached, computed under ``no_grad``);
- ``nan``: NaN or infinite gradient;
- ``zero``: exactly zero everywhere (a step function such as rounding);
- ``mismatch``: the directional derivative along random directions disagrees with the central
  finite difference of the score by more than half, on most of the images;
- ``ok``.

The check is of the real score. Where a surrogate is given (``surrogate=``, BPDA) or built in (the
differentiable twin of pytorch-ood's Mahalanobis), the attacks follow the surrogate's gradient and
success is judged by the real score; the report says which. A blocked score with no surrogate is
attacked through a surrogate fitted to its values where the classifier's logits explain it, else
through a gradient estimated from its values (``with_estimates``), and by the gradient-free attacks.
"""

from __future__ import annotations

import copy

import torch

from ..detectors.estimated_gradient import EstimatedGradient, K
from ..detectors.estimated_gradient import H as STEP
from ..detectors.fitted_surrogate import HOLD_OUT, R2_MIN, FittedSurrogate, fit_surrogate
from ..detectors.wrapped_score import evaluate_real

H = 1e-3  # finite-difference step, in pixel units
ATOL = 1e-3  # directional derivatives (per unit step of every pixel) that differ by less agree
SAMPLE = 8  # validation images checked per score
N_CLEAN, N_ADV = 1000, 500  # validation images a fitted surrogate learns from, and those also attacked per eps


def _real(det, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the real score, the logits) of x: never a surrogate."""
    return evaluate_real(det.scorer, det.model, x)


def _real_scores(det, x: torch.Tensor) -> torch.Tensor:
    return _real(det, x)[0]


def gradient_status(det, x: torch.Tensor, seed: int = 0) -> tuple[str, str]:
    """(status, detail) of the real score's input gradient on the first ``SAMPLE`` images of ``x``."""
    x = x[:SAMPLE].detach().to(det.device, torch.float32)
    xg = x.clone().requires_grad_(True)
    with torch.enable_grad():
        s = _real_scores(det, xg)
        if not s.requires_grad:
            return "missing", "no gradient reaches the input"
        (g,) = torch.autograd.grad(s.sum(), xg, allow_unused=True)
    if g is None:
        return "missing", "no gradient reaches the input"
    if not torch.isfinite(g).all():
        return "nan", f"NaN or infinite gradient on {int((~torch.isfinite(g)).flatten(1).any(1).sum())} of {len(x)} images"
    if not g.abs().amax() > 0:
        return "zero", f"the gradient is exactly zero on all {len(x)} images"
    d = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(seed)).to(x) * 2 - 1
    with torch.no_grad():
        fd = (_real_scores(det, x + H * d) - _real_scores(det, x - H * d)) / (2 * H)
    gd = (g * d).flatten(1).sum(1)
    scale = torch.maximum(fd.abs(), gd.abs())
    # below ATOL the two agree: float32 cannot resolve a saturated score's finite difference (1 - max softmax
    # near 1e-7 moves in steps of 6e-8, i.e. 3e-5 over 2 H), and a score that flat is not steered by either
    bad = (fd - gd).abs() > 0.5 * scale + ATOL
    if int(bad.sum()) > len(x) // 2:
        return "mismatch", (f"directional derivative vs finite difference differ by more than half on "
                            f"{int(bad.sum())} of {len(x)} images")
    return "ok", f"matches the finite difference on {len(x) - int(bad.sum())} of {len(x)} images"


def surrogate_of(det) -> str:
    """"given" (the user's surrogate), "built in", or "none"."""
    surrogate = getattr(det.scorer, "surrogate", None)
    if surrogate is None:
        return "none"
    return "built in" if isinstance(surrogate, str) else "given"


def check_gradients(detectors: dict, x_val: torch.Tensor) -> list[dict]:
    """One row per score: its gradient status, the surrogate, and what the attacks do about it."""
    rows = []
    for name, det in detectors.items():
        status, detail = gradient_status(det, x_val)
        surrogate = surrogate_of(det)
        if status == "ok":
            action = "attacked through its own gradient"
        elif surrogate != "none":
            action = "attacked through the surrogate's gradient, judged by the real score (BPDA)"
        else:
            surrogate = "estimated"
            action = (f"BLOCKED: attacked through a gradient estimated from the score's values (finite differences along "
                      f"the {K} largest logits' gradients, step {STEP:g}), judged by the real score; a surrogate= attacks "
                      "it more surely")
        rows.append({"score": name, "gradient": status, "surrogate": surrogate, "action": action, "detail": detail})
    return rows


def _fit_data(det, x_val: torch.Tensor, eps_list, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, real scores) on up to N_CLEAN clean validation images and oblivious PGD-10 examples of
    the first N_ADV of them at each eps: the region the attacks will search."""
    from ..attacks import make_attack, run_attack

    x = x_val[:N_CLEAN].detach().to(det.device, torch.float32)
    with torch.no_grad():
        y = det.model(x).argmax(dim=1)  # no labels needed: attack the predicted class
    parts = [x] + [run_attack(make_attack("pgd", det.model, float(e), steps=10), x[:N_ADV], y[:N_ADV], seed=seed)
                   for e in eps_list if float(e) > 0]
    xs = torch.cat(parts)
    with torch.no_grad():  # one pass: each score comes with the logits it read
        pairs = [_real(det, xs[i:i + det.batch_size]) for i in range(0, len(xs), det.batch_size)]
    return torch.cat([lg for _, lg in pairs]), torch.cat([s for s, _ in pairs])


def with_estimates(detectors: dict, rows: list[dict], x_val: torch.Tensor | None = None, eps_list=(),
                   seed: int = 0) -> dict:
    """The detectors the attacks use: a blocked score with no surrogate (``check_gradients``' rows say
    "estimated") gets, given ``x_val``, a surrogate fitted to its values on the logits
    (:mod:`..detectors.fitted_surrogate`) where that explains it (held-out R^2 >= 0.9), else a
    gradient estimated from its values (:mod:`..detectors.estimated_gradient`); each such row's
    ``surrogate`` and ``action`` are updated to say which. The others are themselves. The given
    detectors are not changed."""
    out = dict(detectors)
    for row in rows:
        if row["surrogate"] != "estimated":
            continue
        det = copy.copy(detectors[row["score"]])
        r2 = None
        if x_val is not None and len(x_val) >= 2 * HOLD_OUT:
            net, r2 = fit_surrogate(*_fit_data(det, x_val, eps_list, seed), seed=seed)
            if r2 >= R2_MIN:
                det.scorer = FittedSurrogate(det.scorer, net, r2)
                row["surrogate"] = "fitted"
                row["action"] = (f"BLOCKED: attacked through a surrogate fitted to the score's values (a network on the "
                                 f"classifier's logits, R^2 {r2:.3f} on held-out validation points and their PGD examples), "
                                 "judged by the real score; a surrogate= attacks it more surely")
                out[row["score"]] = det
                continue
        det.scorer = EstimatedGradient(det.scorer)
        if r2 is not None:
            row["action"] += f" (a surrogate fitted on the logits explained R^2 {r2:.3f} < {R2_MIN:g} of it)"
        out[row["score"]] = det
    return out
