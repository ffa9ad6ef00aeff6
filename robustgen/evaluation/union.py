"""The per-input worst case over several attack reports of the same model, inputs and thresholds: an
input counts when any attack of any report made it misclassified and unflagged. For adding attacks to
a finished report (another precision, another budget) without running it again:

    rows = union_worst_case(["reports/m/attack-strong-bf16-eps0.3-n1000",
                             "reports/m/attack-autoattack-eps0.3-n1000"])
    rows = union_worst_case([...], first=500)   # the same, on the first 500 inputs only

Refuses reports of other weights or data (``model_sha256``, ``data_sha256``), of another N, or whose
thresholds differ by more than 0.01 % for a score they share (the same fit on two CPUs differs in
the seventh digit).
"""

from __future__ import annotations

import os

import numpy as np

from .compare import read_report
from .metrics import wilson_interval


def _check_same_inputs(folders: list, reports: list[dict]) -> dict[str, float]:
    """The thresholds the reports share, by score; ValueError where they are not the same inputs."""
    first = reports[0]["meta"]
    for path, rep in zip(folders[1:], reports[1:]):
        for key in ("model_sha256", "data_sha256", "n"):
            if rep["meta"].get(key) != first.get(key):
                raise ValueError(f"{path}: {key} differs from {folders[0]}'s; the union needs the same inputs")
    thresholds: dict[str, float] = {}
    for path, rep in zip(folders, reports):
        for score, t in rep["detection"].groupby("score")["threshold"].first().items():
            if score in thresholds and not np.isclose(thresholds[score], t, rtol=1e-4):
                raise ValueError(f"{path}: the {score} threshold {t} differs from {thresholds[score]}")
            thresholds[score] = float(t)
    return thresholds


def union_worst_case(folders: list[str | os.PathLike], first: int | None = None) -> list[dict]:
    """One row per (eps, score) of the first report's worst case: the share of inputs (of the first
    ``first`` test inputs, when given) that some attack of some report broke, with its 95 % Wilson
    interval, the threshold and the attacks joined (``attack (report folder)``)."""
    if not folders:
        raise ValueError("give at least one attack report folder")
    folders = [str(f) for f in folders]
    reports = [read_report(f) for f in folders]  # checksums verified
    thresholds = _check_same_inputs(folders, reports)
    n_all = int(reports[0]["meta"]["n"])
    if first is not None and (isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= n_all):
        raise ValueError(f"first must be a whole number from 1 to the reports' N ({n_all}), got {first!r}")
    n = n_all if first is None else first
    rows = []
    for (eps, score), _ in reports[0]["worst_case"].groupby(["eps", "score"]):
        broken, attacks = np.zeros(n, dtype=bool), []
        for path, rep in zip(folders, reports):
            table = rep["per_input"]
            part = table[np.isclose(table["eps"], eps)].sort_values("index")
            cols = [c for c in part.columns if c.endswith(f":{score}")]
            if part.empty or not cols:
                continue
            if list(part["index"]) != list(range(n_all)):
                raise ValueError(f"{path}: per_input.csv does not hold inputs 0..{n_all - 1} at eps {eps:g}")
            broken |= part[cols].to_numpy()[:n].astype(bool).any(axis=1)
            attacks += [f"{c.split(':')[0]} ({path.rstrip('/').split('/')[-1]})" for c in cols]
        k = int(broken.sum())
        low, high = wilson_interval(k, n)
        rows.append({"eps": float(eps), "score": score, "n": n, "undetected_success_rate": k / n, "ci_low": low,
                     "ci_high": high, "threshold": thresholds[score], "attacks": attacks})
    return rows
