"""The figures under attack of a shipped model, read from the attack reports that measured it: what
``robustgen models`` prints beside the clean accuracy (RobustBench's two columns, plus the detector's
worst case), kept in ``robustgen/pretrained/measured.csv`` with the report each figure came from.

    row = measured_row("robust-fashion-conv4-ema",
                       autoattack="reports/robust-fashion-conv4-ema/attack-autoattack-eps0.1-n1000",
                       worst_case="reports/benchmarks/union_worst_case_robust-fashion-conv4-ema.json")

``worst_case`` is an attack report (its ``worst_case.csv``) or a JSON written by
``benchmarks/union_worst_case.py`` (the union of several reports; the eps-0 floor comes from the first
report it names). The AutoAttack figure must come from a report where AutoAttack saw every input (not
after other attacks in a cascade).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .compare import read_report

COLUMNS = ["model", "autoattack_eps", "autoattack_accuracy", "autoattack_n", "autoattack_precision", "autoattack_report",
           "score", "worst_case_eps", "worst_case", "worst_case_ci_low", "worst_case_ci_high", "worst_case_n",
           "eps0_floor", "worst_case_precision", "worst_case_report", "model_sha256"]
TEXT = {"model", "autoattack_precision", "autoattack_report", "score", "worst_case_precision", "worst_case_report",
        "model_sha256"}
COUNTS = {"autoattack_n", "worst_case_n"}


def parse_row(row: dict[str, str]) -> dict:
    """A measured.csv row as read by ``csv.DictReader`` with its numbers as numbers (NaN where a
    figure was not recorded)."""
    return {k: v if k in TEXT else int(v) if k in COUNTS else float(v) for k, v in row.items()}


def autoattack_figure(folder: str | os.PathLike) -> dict:
    """AutoAttack's robust accuracy in a report at the largest eps it ran, with that eps, N and the
    attack precision."""
    report = read_report(folder)
    meta = report["meta"]
    rows = report["detection"].query("method == 'autoattack'")
    if rows.empty:
        raise ValueError(f"{folder}: no AutoAttack row in detection.csv")
    if meta.get("cascade") and meta.get("order", ["autoattack"])[0] != "autoattack":
        raise ValueError(f"{folder}: AutoAttack ran after other attacks in a cascade; its row counts only what "
                         "they left standing")
    row = rows.loc[rows["eps"].idxmax()]  # the largest eps it was run at: the headline budget
    return {"autoattack_eps": float(row["eps"]), "autoattack_accuracy": float(row["robust_acc"]), "autoattack_n": int(row["n"]),
            "autoattack_precision": _precision([meta]),
            "model_sha256": meta.get("model_sha256")}


def _precision(metas: list[dict]) -> str:
    """The attacks' arithmetic over one or several reports: float32, bfloat16, or mixed."""
    found = {m.get("precision", "float32") for m in metas}  # reports before bfloat16 attacks ran float32
    return found.pop() if len(found) == 1 else "mixed"


def worst_case_figure(source: str | os.PathLike, score: str = "confidence", root: str | os.PathLike = ".") -> dict:
    """The per-input worst case with ``score`` (the largest eps the source measured), its 95 % interval,
    N and the eps-0 floor; ``source`` an attack report folder or a union JSON (whose report paths are
    read relative to ``root``)."""
    source = Path(source)
    if source.suffix == ".json":
        joined = json.loads(source.read_text())
        named = [read_report(Path(root) / r) for r in joined["reports"]]
        rows = joined["rows"]
    else:
        named = [read_report(source)]
        rows = named[0]["worst_case"].to_dict("records")
    floors, sha = named[0]["worst_case"], named[0]["meta"].get("model_sha256")
    mine = [r for r in rows if r["score"] == score]
    if not mine:
        raise ValueError(f"{source}: no worst case with the {score} score")
    w = max(mine, key=lambda r: r["eps"])
    floor = floors[(floors["score"] == score) & np.isclose(floors["eps"], w["eps"])]
    return {"score": score, "worst_case_eps": float(w["eps"]), "worst_case": float(w["undetected_success_rate"]),
            "worst_case_ci_low": float(w["ci_low"]), "worst_case_ci_high": float(w["ci_high"]), "worst_case_n": int(w["n"]),
            "eps0_floor": float(floor["eps0_floor"].iloc[0]) if not floor.empty and "eps0_floor" in floor else float("nan"),
            "worst_case_precision": _precision([r["meta"] for r in named]), "model_sha256": sha}


def measured_row(model: str, autoattack: str | os.PathLike, worst_case: str | os.PathLike,
                 score: str = "confidence", root: str | os.PathLike = ".") -> dict:
    """One row of measured.csv; ValueError where the two sources measured different weights."""
    aa = autoattack_figure(Path(root) / autoattack)
    wc = worst_case_figure(Path(root) / worst_case, score, root)
    if aa["model_sha256"] and wc["model_sha256"] and aa["model_sha256"] != wc["model_sha256"]:
        raise ValueError(f"{autoattack} and {worst_case} measured different weights (model_sha256)")
    return {"model": model, **aa, **wc, "autoattack_report": Path(autoattack).as_posix(),
            "worst_case_report": Path(worst_case).as_posix(), "model_sha256": aa["model_sha256"] or wc["model_sha256"]}


def record(row: dict, path: str | os.PathLike, replace: bool = False) -> None:
    """Add ``row`` to the measured.csv at ``path`` (rows sorted by model), atomically; a model already
    recorded is refused unless ``replace``."""
    path = Path(path)
    rows = list(csv.DictReader(path.open(newline=""))) if path.is_file() else []
    if any(r["model"] == row["model"] for r in rows) and not replace:
        raise ValueError(f"{row['model']} is already in {path}; pass --replace to record new figures")
    rows = sorted([r for r in rows if r["model"] != row["model"]] + [row], key=lambda r: r["model"])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
