"""Sanity checks on an attack evaluation (Carlini et al. 2019, "On evaluating adversarial
robustness", section 5; AutoAttack's checks): each is a row ``check, passed, detail`` of
``sanity.csv``. A failed check means the evaluation, not the defence, is in doubt (gradient
masking, too few steps, a bug), and ``robustgen attack`` prints a warning.

1. ``monotone-eps``: robust accuracy (and the per-input worst-case undetected-success) does not
   get better for the defender as eps grows.
2. ``eps-1``: at eps 1.0 (the whole image may change) every iterative gradient attack reaches
   near-zero robust accuracy, re-run on the first ``sanity_n`` inputs (detector-aware attacks
   untargeted, against the run's first score) with a step that can cross the whole range (a
   fixed-step attack takes 2.5 / steps, Madry et al.'s rule at eps 1, if the run's is smaller:
   otherwise 40 steps of 0.01 check eps 0.4, not an unbounded attack).
3. ``black-box-weaker``: the gradient-free ``square`` is not stronger than the best white-box attack
   at any eps (if it were, the gradients mislead the white-box attacks).
4. ``double-steps``: at the largest eps, doubling each iterative attack's steps (queries for
   ``square``) on the first ``sanity_n`` inputs changes its result by less than one point of them.
   In a cascade each attack is re-run on the inputs (of those) it ran on, and a detector-aware one
   against one score: the one it ran on the most of them (per score it ran on a handful, often one
   or two: a rerun for each says little and costs as much as one on all; ``--full`` checks every score).
5. ``black-box-only``: per eps and score, no input is broken by a gradient-free attack (``square``,
   ``guarded-square``) and by none of the gradient attacks (gradient masking otherwise).
6. ``aware-not-weaker``: per eps and score, the detector-aware attacks break at least what the
   oblivious ones break against the same score.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attacks import GRADIENT_FREE, default_budget, is_adaptive, unbounded_step_size
from .outcomes import attack_outcome
from .store import fetch
from .worst_case import worst_case

TOLERANCE = 0.01  # one point
EPS1_MAX_ROBUST = 0.01  # "near zero" robust accuracy at eps 1.0
NOT_ITERATIVE = {"fgsm"}


def _row(check: str, passed: bool | None, detail: str) -> dict:
    return {"check": check, "passed": "n/a" if passed is None else bool(passed), "detail": detail}


def _monotone(result, methods, eps_list) -> list[dict]:
    rows = []
    if len(eps_list) < 2:
        return [_row("monotone-eps", None, "only one eps in the run")]
    eps_sorted = sorted(eps_list)
    keys = sorted({(m, t) for (m, _, t) in result.fooled}, key=str)
    if result.cascade:  # an attack's share depends on what the earlier ones left it: only the worst case
        keys = []
        rows.append(_row("monotone-eps", None, "per attack: not in a cascade (each attack ran on what the earlier "
                         "ones left; --full checks each)"))
    for method, target in keys:
        acc = [float((result.correct & ~result.fooled[(method, e, target)]).mean()) for e in eps_sorted
               if (method, e, target) in result.fooled]
        bad = [f"{eps_sorted[i]:g}->{eps_sorted[i + 1]:g}: {acc[i]:.4f}->{acc[i + 1]:.4f}"
               for i in range(len(acc) - 1) if acc[i + 1] > acc[i] + 1e-12]
        who = method + (f" vs {target}" if target else "")
        rows.append(_row("monotone-eps", not bad, f"{who}: robust accuracy " + (
            "never rises with eps" if not bad else "rises at " + "; ".join(bad))))
    by_score: dict[str, list] = {}
    for w in worst_case(result):
        by_score.setdefault(w["score"], []).append((w["eps"], w["undetected_success_rate"]))
    for score, pts in by_score.items():
        pts.sort()
        bad = [f"{a[0]:g}->{b[0]:g}: {a[1]:.4f}->{b[1]:.4f}" for a, b in zip(pts, pts[1:]) if b[1] < a[1] - 1e-12]
        rows.append(_row("monotone-eps", not bad, f"worst case vs {score}: undetected-success " + (
            "never falls with eps" if not bad else "falls at " + "; ".join(bad))))
    return rows


def _square_vs_white_box(result, eps_list) -> list[dict]:
    if "square" not in {m for (m, _, _) in result.fooled}:
        return [_row("black-box-weaker", None, "square was not in this run (add --method square to check)")]
    if result.cascade:
        return [_row("black-box-weaker", None, "in a cascade square runs last, on what the gradient attacks left: "
                     "black-box-only says what it broke (--full compares the two)")]
    rows = []
    for eps in sorted(eps_list):
        sq = result.fooled.get(("square", eps, None))
        white = {m: f for (m, e, t), f in result.fooled.items() if e == eps and m not in GRADIENT_FREE and t is None}
        if sq is None or not white:
            rows.append(_row("black-box-weaker", None, f"eps {eps:g}: no oblivious white-box attack to compare"))
            continue
        best_name, best = max(white.items(), key=lambda kv: kv[1].mean())
        only_square = int((sq & ~np.logical_or.reduce(list(white.values()))).sum())
        ok = sq.mean() <= best.mean() + TOLERANCE
        rows.append(_row("black-box-weaker", ok, f"eps {eps:g}: square fools {sq.mean():.4f} of inputs, the best "
                         f"white-box ({best_name}) {best.mean():.4f}; {only_square} inputs fooled only by square"))
    return rows


def _detector_checks(result) -> list[dict]:
    """Per eps and score: (``black-box-only``) inputs that a gradient-free attack broke and no gradient
    attack did, a sign that the gradients mislead (masking); (``aware-not-weaker``) the attacks that
    know the detector break at least what those that ignore it break (they could always do the same)."""
    rows = []
    groups: dict[tuple, list] = {}
    for (method, eps, score), broken in result.broken.items():
        groups.setdefault((eps, score), []).append((method, broken))
    for (eps, score), items in sorted(groups.items()):
        free = [b for m, b in items if m in GRADIENT_FREE]
        grad = [b for m, b in items if m not in GRADIENT_FREE]
        if free and grad:
            only = int((np.logical_or.reduce(free) & ~np.logical_or.reduce(grad)).sum())
            rows.append(_row("black-box-only", only == 0, f"eps {eps:g} vs {score}: {only} inputs broken by a "
                             "gradient-free attack and by no gradient attack" + (" (a sign of gradient masking: "
                             "the gradient attacks' figures are lower bounds)" if only else "")))
        if result.cascade:
            continue  # the detector-aware attacks ran only where the oblivious ones had failed
        w = next((w for w in worst_case(result) if w["eps"] == eps and w["score"] == score), None)
        if w is not None and not (np.isnan(w["oblivious_rate"]) or np.isnan(w["adaptive_rate"])):
            ok = w["adaptive_rate"] >= w["oblivious_rate"]
            rows.append(_row("aware-not-weaker", ok, f"eps {eps:g} vs {score}: detector-aware attacks break "
                             f"{w['adaptive_rate']:.4f}, oblivious ones {w['oblivious_rate']:.4f}" + (
                                 "" if ok else "; the detector-aware attacks are weaker than ignoring the detector: "
                                 "they fall short, not the detector")))
    return rows


def _double_steps_targets(result, method: str, eps: float, scores: list[str], m: int) -> list:
    """Which runs of ``method`` at ``eps`` the doubled-steps check repeats: the oblivious one; for a
    detector-aware attack every score, but in a cascade only the score it ran on the most of the
    first m inputs (the first such score on a tie)."""
    if not is_adaptive(method):
        return [None]
    if not result.cascade:
        return scores
    return [max(scores, key=lambda s: int(result.attacked[(method, eps, s)][:m].sum()))]


def run_sanity_checks(result, model, detectors, x, y, *, methods, eps_list, batch_size, attack_kwargs,
                      sanity_n, fpr, thresholds, seed: int | None = 0, store=None, starts=None) -> list[dict]:
    """The checks above; ``starts`` (``cascade.Starts``) gives the detector-aware attacks re-run with
    doubled steps the starts they had in the run."""

    rows = _monotone(result, methods, eps_list) + _square_vs_white_box(result, eps_list) + _detector_checks(result)
    if result.cascade:
        rows.append(_row("aware-not-weaker", None, "in a cascade the detector-aware attacks run only on what the "
                         "oblivious ones left (and begin at their examples); --full compares the two"))
    m = min(sanity_n, len(y))
    if m <= 0:
        return rows + [_row("eps-1", None, "skipped (--sanity-n 0)"), _row("double-steps", None, "skipped (--sanity-n 0)")]
    xs, ys = x[:m], y[:m]
    correct = result.correct[:m]
    first_score = next(iter(detectors))
    for method in methods:
        if method in GRADIENT_FREE or method in NOT_ITERATIVE:
            continue
        target = first_score if is_adaptive(method) else None
        kw = {**attack_kwargs, **({"targets": "untargeted"} if is_adaptive(method) else {})}
        step = unbounded_step_size(method, kw.get("steps"), kw.get("step_size"))
        if step is not None:
            kw["step_size"] = step
        pred = fetch(store, ("eps-1", method, 1.0, target, m, step), lambda: attack_outcome(
            model, detectors, method, 1.0, xs, ys, target=target, batch_size=batch_size, attack_kwargs=kw, seed=seed)).pred
        robust = float((correct & (pred == ys.numpy())).mean())
        who = method + (f" vs {target} (untargeted)" if target else "")
        how = "" if step is None else f", step {step:g}"
        rows.append(_row("eps-1", robust <= EPS1_MAX_ROBUST, f"{who}: robust accuracy {robust:.4f} at eps 1.0{how} "
                         f"on {m} inputs (must be <= {EPS1_MAX_ROBUST})"))
    eps = max(eps_list)
    for method in methods:
        if method in NOT_ITERATIVE:
            continue
        key, default = default_budget(method)
        base = attack_kwargs.get(key) or default
        for target in _double_steps_targets(result, method, eps, list(detectors), m):
            # on the inputs (of the first m) the attack ran on: all of them, but in a cascade
            sub = np.nonzero(result.attacked[(method, eps, target)][:m])[0]
            if not len(sub):
                rows.append(_row("double-steps", None, f"{method} eps {eps:g}: no input of the first {m} was left "
                                 "standing for it"))
                continue
            sel = torch.from_numpy(sub)
            start = starts.get(eps, target, sub) if starts is not None and target else None  # as the run began it
            out = fetch(store, ("double-steps", method, eps, target, m, len(sub)), lambda: attack_outcome(
                model, detectors, method, eps, xs[sel], ys[sel], target=target, batch_size=batch_size,
                attack_kwargs={**attack_kwargs, key: 2 * base}, seed=seed, start=start))
            pred, adv_scores = out.pred, out.scores
            ok, ys_sub = correct[sub], ys.numpy()[sub]
            fooled2 = ok & (pred != ys_sub)
            if target is None:
                before = float((ok & ~result.fooled[(method, eps, None)][sub]).mean())
                after = float((ok & ~fooled2).mean())
                what = "robust accuracy"
            else:
                before = float(result.broken[(method, eps, target)][sub].mean())
                after = float((fooled2 & ~(adv_scores[target] > thresholds[target][fpr])).mean())
                what = f"undetected-success vs {target}"
            stronger = (after < before) if target is None else (after > before)
            change = abs(after - before) * len(sub) / m  # as a share of the first m (the inputs not re-run keep theirs)
            note = "; more steps are stronger: this run understates the attack (its undetected-success is a lower bound)" \
                if stronger and change >= TOLERANCE else ""
            of = "" if len(sub) == m else f" of the first {m} (a change of {100 * change:.1f} points of them)"
            rows.append(_row("double-steps", change < TOLERANCE,
                             f"{method} eps {eps:g}: {what} {before:.4f} with {base} {key}, {after:.4f} with "
                             f"{2 * base} on {len(sub)} inputs{of}{note}"))
    return rows


def failed(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["passed"] is False]
