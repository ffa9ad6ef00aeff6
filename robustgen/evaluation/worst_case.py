"""The per-input worst case over every attack of a run, and the security curve drawn from it."""

from __future__ import annotations

import numpy as np

from ..attacks import is_adaptive
from .metrics import wilson_interval
from .outcomes import BenchmarkResult


def eps0_floor(result: BenchmarkResult, score: str) -> float:
    """The share of all N clean inputs already misclassified and not flagged by ``score``: what an
    attacker gets with no perturbation at all. Attacks only count inputs classified correctly when
    clean, so this adds to every undetected-success figure, and each must be read against it."""
    flagged = result.clean_flagged.get(score)
    if flagged is None or result.correct is None:
        return float("nan")
    return float((~result.correct & ~flagged).mean())


def union_by_kind(items: list[tuple[str, np.ndarray]], cascade: bool = False) -> tuple[float, float]:
    """(oblivious, detector-aware): the share of inputs broken by any attack of that kind among
    ``items`` ((method, broken (N,) bool) pairs), NaN where there is none of that kind. In a
    ``cascade`` both are NaN: the detector-aware attacks ran only where the oblivious ones had failed,
    so neither kind's union is what it breaks alone."""
    if cascade:
        return float("nan"), float("nan")
    rates = []
    for adaptive in (False, True):
        part = [b for m, b in items if is_adaptive(m) == adaptive]
        rates.append(float(np.logical_or.reduce(part).mean()) if part else float("nan"))
    return rates[0], rates[1]


def worst_case(result: BenchmarkResult) -> list[dict]:
    """Per (eps, score): the share of all N inputs that *any* attack of the run broke (made
    misclassified and unflagged): the union over attacks, per input, with a 95 % Wilson interval,
    and beside it the eps-0 floor (:func:`eps0_floor`) and the same union over the oblivious attacks
    alone and over the detector-aware ones alone (NaN where the run had none of that kind, and in a
    cascade, where each attack ran only on what the earlier ones left)."""
    groups: dict[tuple, list] = {}
    for (method, eps, score), broken in result.broken.items():
        groups.setdefault((eps, score), []).append((method, broken))
    out = []
    for (eps, score), items in sorted(groups.items()):
        union = np.logical_or.reduce([b for _, b in items])
        n, k = len(union), int(union.sum())
        lo, hi = wilson_interval(k, n)
        oblivious, adaptive = union_by_kind(items, result.cascade)
        out.append({"eps": eps, "score": score, "n": n, "undetected_success_rate": k / n, "ci_low": lo, "ci_high": hi,
                    "eps0_floor": eps0_floor(result, score), "oblivious_rate": oblivious, "adaptive_rate": adaptive,
                    "attacks": "+".join(m for m, _ in items)})
    return out


def security_curve(rows: list[dict], worst: list[dict]) -> list[dict]:
    """Per score and eps (eps 0 = clean): the classifier's robust accuracy under the strongest
    attack judged by that score (from ``rows``, detection.csv's rows) and the per-input worst-case
    undetected-success (from ``worst``, worst_case.csv's rows). The eps-0 point of the latter is the
    score's floor (clean inputs already misclassified and not flagged), not 0: what an attacker gets
    for free is where the curve starts (NaN for a report written before it recorded floors)."""
    lowest: dict[tuple, float] = {}
    for r in rows:
        key = (float(r["eps"]), r["score"])
        lowest[key] = min(lowest.get(key, 1.0), float(r["robust_acc"]))
    clean = float(rows[0]["clean_acc"]) if rows else float("nan")
    floors = {w["score"]: float(w.get("eps0_floor", float("nan"))) for w in worst}
    out = [{"score": s, "eps": 0.0, "robust_acc": clean, "undetected_success_rate": floors[s]} for s in sorted(floors)]
    out += [{"score": w["score"], "eps": float(w["eps"]), "robust_acc": lowest.get((float(w["eps"]), w["score"]), float("nan")),
             "undetected_success_rate": float(w["undetected_success_rate"])} for w in worst]
    return sorted(out, key=lambda r: (r["score"], r["eps"]))


def per_input_rows(result: BenchmarkResult) -> list[dict]:
    """One row per (input, eps): index, label, eps, and per ``method:score`` whether it broke the input."""
    by_eps: dict[float, dict] = {}
    for (method, eps, score), broken in result.broken.items():
        by_eps.setdefault(eps, {})[f"{method}:{score}"] = broken
    rows = []
    for eps, columns in sorted(by_eps.items()):
        for i, label in enumerate(result.labels):
            rows.append({"index": i, "label": int(label), "eps": eps, **{k: int(v[i]) for k, v in columns.items()}})
    return rows
