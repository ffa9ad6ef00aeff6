"""CSV, markdown and figures. The only module that imports matplotlib: lazily, and through
``matplotlib.figure.Figure`` rather than pyplot, so no global backend or state is touched and
importing robustgen stays fast."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence


def fmt_value(v, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4,
                   headers: dict | None = None) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (dicts); numbers right-aligned."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    headers = headers or {}
    head = "| " + " | ".join(headers.get(c, c) for c in columns) + " |"
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows) for c in columns]
    sep = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(fmt_value(r.get(c), digits) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


def write_csv(path: str | os.PathLike, rows: Iterable[dict], columns: Sequence[str] | None = None) -> Path:
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    if columns is not None:
        frame = frame[list(columns)]
    path = Path(path)
    frame.to_csv(path, index=False, float_format="%.6g")  # 6 significant digits: exact enough, half the size
    return path


def new_figure(width: float, height: float, dpi: int = 100):
    """A stand-alone matplotlib Figure (no pyplot state); save it with ``fig.savefig(path)``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


DETECTION_COLUMNS = [
    "method", "attack_kind", "eps", "score", "n", "clean_acc", "robust_acc", "success_rate", "auroc",
    "auroc_successful", "tpr_at_fpr_1", "tpr_at_fpr_5", "tpr_at_fpr_10", "fpr_test", "undetected_success_rate",
    "err_clean_pred", "err_adv_pred", "err_adv_true", "threshold", "attack_seconds",
]
_DETECTION_MD_COLUMNS = DETECTION_COLUMNS[:-2]


def plot_roc(roc_rows: list[dict], path: str | os.PathLike) -> Path:
    """ROC curves: a panel per (method, eps), a line per score."""
    import pandas as pd

    frame = pd.DataFrame(roc_rows)
    panels = list(frame.groupby(["method", "eps"], sort=False))
    methods = list(dict.fromkeys(frame["method"]))
    eps_values = list(dict.fromkeys(frame["eps"]))
    fig = new_figure(3.6 * len(eps_values), 3.4 * len(methods), dpi=110)
    axes = fig.subplots(len(methods), len(eps_values), squeeze=False, sharex=True, sharey=True)
    for (method, eps), panel in panels:
        ax = axes[methods.index(method)][eps_values.index(eps)]
        for score, curve in panel.groupby("score", sort=False):
            ax.plot(curve["fpr"], curve["tpr"], label=score, lw=1.4)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_title(f"{method}, eps = {eps:g}", fontsize=10)
        ax.set_xlabel("false-positive rate (clean)")
        ax.set_ylabel("true-positive rate (attacked)")
        ax.legend(fontsize=8, loc="lower right")
    path = Path(path)
    fig.savefig(path)
    return path


def plot_security_curve(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """One report's security curve (``rows`` as from ``benchmark.security_curve``): see ``plot_compare``."""
    return plot_compare([{"report": "", **r} for r in rows], path, title)


def plot_compare(curves: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Two panels against eps: the classifier's robust accuracy under the strongest attack and the
    per-input worst-case undetected-success; a colour per score and, for several reports
    (``curves[i]["report"]``), a line style per report."""
    import pandas as pd

    frame = pd.DataFrame(curves)
    styles = ["-", "--", ":", "-."]
    reports = list(dict.fromkeys(frame["report"]))
    scores = list(dict.fromkeys(frame["score"]))
    fig = new_figure(8.0 if len(reports) == 1 else 9.0, 3.5, dpi=110)
    left, right = fig.subplots(1, 2, sharex=True)
    for (report, score), curve in frame.groupby(["report", "score"], sort=False):
        label = score if len(reports) == 1 else f"{report}, {score}"
        kw = {"ls": styles[reports.index(report) % len(styles)], "color": f"C{scores.index(score) % 10}", "marker": "o",
              "lw": 1.3, "ms": 3, "label": label}
        left.plot(curve["eps"], curve["robust_acc"], **kw)
        right.plot(curve["eps"], curve["undetected_success_rate"], **kw)
    left.set_ylabel("robust accuracy (classifier, strongest attack)")
    right.set_ylabel("undetected-success (any attack, per input)")
    for ax in (left, right):
        ax.set_xlabel("eps (L-inf, pixel units)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    right.legend(fontsize=8 if len(reports) == 1 else 7)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path)
    return path


def _half_eps_bound(rows: list[dict], worst: list[dict]) -> list[dict]:
    """Tramer 2022 ("Detecting adversarial examples is (nearly) as hard as classifying them"): a
    detector that is robust at eps yields a (possibly inefficient) classifier robust at eps / 2.
    Per (eps, score): the robust accuracy at eps / 2 that the detection result implies (1 - clean
    error - realised test FPR - worst-case undetected-success), beside the classifier's own robust
    accuracy at eps / 2 when the run measured it (the lowest over its oblivious attacks)."""
    clean_acc = rows[0]["clean_acc"] if rows else float("nan")
    fpr_test = {r["score"]: r["fpr_test"] for r in rows}
    measured: dict[float, float] = {}
    for r in rows:
        if r["attack_kind"] == "oblivious":
            measured[r["eps"]] = min(measured.get(r["eps"], 1.0), r["robust_acc"])
    out = []
    for w in worst:
        half = w["eps"] / 2
        own = next((v for e, v in measured.items() if abs(e - half) < 1e-9), float("nan"))
        implied = clean_acc - fpr_test.get(w["score"], float("nan")) - w["undetected_success_rate"]
        out.append({"eps": w["eps"], "score": w["score"], "half_eps": half, "implied_robust_acc_at_half_eps": implied,
                    "classifier_robust_acc_at_half_eps": own})
    return out


def detection_markdown(rows: list[dict], misclassification: list[dict], worst: list[dict], meta: dict,
                       sanity: list[dict] | None = None) -> str:
    """The markdown report of ``robustgen attack``."""
    budget = ", ".join(f"{k} {v}" for k, v in meta.get("budget", {}).items())
    lines = [
        "# Detection benchmark", "",
        f"Checkpoint `{meta['checkpoint']}` ({meta['dataset']}), first N = {meta['n']} test images; "
        f"thresholds fitted on {meta['n_val']} clean validation images at FPR {meta['fpr']:g}. "
        "Oblivious attacks know only the classifier; adaptive ones also know the detector's score and threshold.",
        "",
        f"Attack budget (gradient steps or queries per input, all runs and targets together): {budget}." if budget else "",
        "",
        "Columns: `auroc` all attacked vs all clean inputs; `auroc_successful` successful adversarials vs "
        "correctly classified clean inputs; `tpr_at_fpr_K` share of successful adversarials flagged at the "
        "K % validation threshold; `fpr_test` realised FPR on clean test data; `undetected_success_rate` share "
        "of all N inputs the attack misclassified without being flagged; `err_*` mean L2 reconstruction "
        "error under the predicted (clean, attacked) and the true (attacked) one-hot label.",
        "",
        markdown_table(rows, _DETECTION_MD_COLUMNS),
        "## Per-input worst case", "",
        "What a detector result is judged by: per eps and score, the share of all N inputs for which *any* "
        "attack of this run produced a misclassified, unflagged example (the union over attacks, per input; "
        "`per_input.csv` lists each attack's outcome per input), with its 95 % Wilson interval.", "",
        markdown_table(worst, digits=4),
        "## Sanity checks", "",
        "Carlini et al. 2019 and AutoAttack's checks on the evaluation itself (`sanity.csv`). A failed check "
        "puts the numbers above in doubt.", "",
        markdown_table(sanity or []),
        "## The detection-classification bound", "",
        "Tramer 2022: a detector robust at eps implies a (possibly inefficient) classifier robust at eps / 2. "
        "`implied_robust_acc_at_half_eps` = clean accuracy - realised test FPR - worst-case undetected-success; "
        "where it is above what classifiers reach at eps / 2 (ours: `classifier_robust_acc_at_half_eps`, "
        "measured in this run when eps / 2 was attacked), the detection result is suspect until stronger "
        "attacks confirm it.", "",
        markdown_table(_half_eps_bound(rows, worst)),
        "## Misclassification detection on clean test data", "",
        "AUROC of each score separating misclassified from correctly classified clean test images "
        "(the paper's section 4.2 claim).", "",
        markdown_table(misclassification),
    ]
    return "\n".join(lines)


WORST_CASE_COLUMNS = ["eps", "score", "n", "undetected_success_rate", "ci_low", "ci_high", "attacks"]


def write_detection_report(result, out: str | os.PathLike, meta: dict) -> str:
    """Write detection.csv/.md, roc.csv/.png, misclassification.csv, worst_case.csv, per_input.csv,
    sanity.csv, security_curve.csv/.png and benchmark.json into ``out``; return the markdown."""
    import json

    from .benchmark import per_input_rows, security_curve, worst_case

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    worst = worst_case(result)
    write_csv(out / "detection.csv", result.rows, DETECTION_COLUMNS)
    write_csv(out / "roc.csv", result.roc, ["method", "eps", "score", "fpr", "tpr", "threshold"])
    write_csv(out / "misclassification.csv", result.misclassification)
    write_csv(out / "worst_case.csv", worst, WORST_CASE_COLUMNS)
    write_csv(out / "per_input.csv", per_input_rows(result))
    write_csv(out / "sanity.csv", result.sanity, ["check", "passed", "detail"])
    curve = security_curve(result.rows, worst)
    write_csv(out / "security_curve.csv", curve, ["score", "eps", "robust_acc", "undetected_success_rate"])
    plot_security_curve(curve, out / "security_curve.png", f"{meta['checkpoint']}, N = {meta['n']}")
    if result.roc:
        plot_roc(result.roc, out / "roc.png")
    markdown = detection_markdown(result.rows, result.misclassification, worst, meta, result.sanity)
    (out / "detection.md").write_text(markdown)
    (out / "benchmark.json").write_text(json.dumps({**meta, "attack_seconds": result.seconds}, indent=2) + "\n")
    return markdown


def tile(images, ncols: int, pad: int = 2, fill: float = 1.0):
    """Tile images (N, 1, S, S) into one 2-D numpy array, row-major, ``pad`` pixels of ``fill``
    between cells; missing cells at the end are left blank."""
    import numpy as np

    images = np.asarray(images)[:, 0] if len(images) else np.zeros((0, 1, 1))
    n, s = len(images), images.shape[-1] if len(images) else 1
    nrows = max(1, -(-n // ncols))
    out = np.full((nrows * (s + pad) - pad, ncols * (s + pad) - pad), fill, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[r * (s + pad): r * (s + pad) + s, c * (s + pad): c * (s + pad) + s] = img
    return out


def show_tiles(ax, images, ncols: int, pad: int = 2) -> None:
    """Draw tiled grey-scale images on ``ax`` (ink dark on white, as on paper)."""
    ax.imshow(1.0 - tile(images, ncols, pad, fill=0.0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
