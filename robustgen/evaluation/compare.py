"""Attack reports as data: ``read_report`` gives a report folder's tables as pandas DataFrames (for
notebooks), ``compare_reports`` lays several reports (two models, say) side by side.

    report = robustgen.read_report("reports/robust-mnist/attack-strong")
    report["worst_case"]            # DataFrame: eps, score, n, undetected_success_rate, ci_low, ci_high, attacks
    report["meta"]["budget"]        # benchmark.json as a dict
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..integrity import IntegrityError, verify_checksums

TABLES = {"detection": "detection.csv", "worst_case": "worst_case.csv", "per_input": "per_input.csv",
          "sanity": "sanity.csv", "misclassification": "misclassification.csv",
          "security_curve": "security_curve.csv", "roc": "roc.csv", "gradients": "gradients.csv"}


def read_report(folder: str | os.PathLike) -> dict:
    """The tables of an attack report folder (written by ``robustgen attack``) as DataFrames, keyed
    by ``detection``, ``worst_case``, ``per_input``, ``sanity``, ``misclassification``,
    ``security_curve`` (computed when the folder predates it) and ``roc`` where present, plus
    ``meta`` (benchmark.json)."""
    import pandas as pd

    from .worst_case import security_curve

    folder = Path(folder)
    if not (folder / "detection.csv").is_file():
        raise ValueError(f"{folder} is not a robustgen attack report (no detection.csv); pass a folder written "
                         "by `robustgen attack`")
    try:
        verify_checksums(folder)  # reports written before robustgen kept checksums are read as they are
    except IntegrityError as e:
        raise ValueError(str(e)) from None
    report: dict = {name: pd.read_csv(folder / f) for name, f in TABLES.items() if (folder / f).is_file()}
    meta = folder / "benchmark.json"
    report["meta"] = json.loads(meta.read_text()) if meta.is_file() else {}
    if "security_curve" not in report and "worst_case" in report:
        report["security_curve"] = pd.DataFrame(security_curve(report["detection"].to_dict("records"),
                                                               report["worst_case"].to_dict("records")))
    return report


def report_label(folder: str | os.PathLike) -> str:
    """A short name for a report: its last two path parts (``robust-mnist/attack-strong``)."""
    parts = Path(folder).resolve().parts
    return "/".join(parts[-2:])


def compare_reports(folders: list[str | os.PathLike]) -> tuple[list[dict], list[dict]]:
    """(rows, curves): one row per (eps, score) with each report's worst-case undetected-success
    and the classifier's robust accuracy under its strongest attack; curves in long format
    (report, score, eps, robust_acc, undetected_success_rate) for the plot."""
    if len(folders) < 1:
        raise ValueError("give at least one report folder to compare")
    labels = [report_label(f) for f in folders]
    if len(set(labels)) != len(labels):
        labels = [str(f) for f in folders]
    curves = []
    for label, folder in zip(labels, folders):
        curve = read_report(folder)["security_curve"]
        curves += [{"report": label, **r} for r in curve.to_dict("records")]
    keys = sorted({(c["eps"], c["score"]) for c in curves if c["eps"] > 0})
    by = {(c["report"], c["eps"], c["score"]): c for c in curves}
    rows = []
    for eps, score in keys:
        row = {"eps": eps, "score": score}
        for label in labels:
            c = by.get((label, eps, score))
            row[f"{label}: robust_acc"] = c["robust_acc"] if c else float("nan")
            row[f"{label}: undetected_success"] = c["undetected_success_rate"] if c else float("nan")
        rows.append(row)
    return rows, curves


def score_table(folders: list[str | os.PathLike]) -> list[dict]:
    """The ablation view: per report, eps and score, the per-input worst case over the oblivious
    attacks alone, over the detector-aware ones alone and over all (with its 95 % interval), beside
    the eps-0 floor. Computed from ``per_input.csv`` (so reports written before worst_case.csv held
    the split still give it)."""
    import numpy as np

    from .metrics import wilson_interval
    from .worst_case import union_by_kind

    rows = []
    for folder in folders:
        report = read_report(folder)
        per_input = report.get("per_input")
        if per_input is None:
            raise ValueError(f"{folder} has no per_input.csv; re-run its attack to compare by score")
        floors = {}
        if "eps0_floor" in report["worst_case"]:
            floors = {r["score"]: r["eps0_floor"] for r in report["worst_case"].to_dict("records")}
        columns = [c for c in per_input.columns if ":" in c]
        scores = sorted({c.split(":", 1)[1] for c in columns})
        for eps, part in per_input.groupby("eps"):
            for score in scores:
                mine = [c for c in columns if c.split(":", 1)[1] == score and part[c].notna().all()]
                if not mine:
                    continue
                items = [(c.split(":", 1)[0], part[c].to_numpy().astype(bool)) for c in mine]
                union = np.logical_or.reduce([b for _, b in items])
                oblivious, detector_aware = union_by_kind(items, bool(report["meta"].get("cascade")))
                lo, hi = wilson_interval(int(union.sum()), len(union))
                rows.append({"report": report_label(folder), "eps": float(eps), "score": score, "n": len(union),
                             "oblivious": oblivious, "detector_aware": detector_aware,
                             "worst_case": float(union.mean()), "ci_low": lo, "ci_high": hi,
                             "eps0_floor": floors.get(score, float("nan"))})
    return rows


def ablation_view(score_rows: list[dict]) -> list[dict]:
    """``score_table``'s rows pivoted to one row per report and eps with one column per score, each
    cell ``oblivious / detector-aware → any`` in percent (the shape of the README's comparison), and
    the range of the scores' eps-0 floors (each score has its own threshold, so its own floor)."""
    scores = sorted({r["score"] for r in score_rows})
    rows: dict[tuple[str, float], dict] = {}
    floors: dict[tuple[str, float], list[float]] = {}
    for r in score_rows:
        key = (r["report"], r["eps"])
        row = rows.setdefault(key, {"report": r["report"], "eps": r["eps"], "n": r["n"], **dict.fromkeys(scores, "-")})
        o, a = ("-" if v != v else f"{100 * v:.1f}" for v in (r["oblivious"], r["detector_aware"]))  # NaN: no such attack
        row[r["score"]] = f"{o} / {a} → {100 * r['worst_case']:.1f} %"
        if r["eps0_floor"] == r["eps0_floor"]:  # NaN where the report predates the floor
            floors.setdefault(key, []).append(100 * r["eps0_floor"])
    for key, row in rows.items():
        lo, hi = (f"{f(floors[key]):.1f}" for f in (min, max)) if key in floors else ("-", "-")
        row["eps0_floor"] = "-" if lo == "-" else f"{lo} %" if lo == hi else f"{lo}-{hi} %"
    return list(rows.values())
