"""The report of ``robustgen attack``: detection.csv/.md, ROC, worst case, sanity checks, security curve."""

from __future__ import annotations

import os
from pathlib import Path

from ..integrity import write_checksums
from .figures import plot_roc, plot_security_curve
from .tables import markdown_table, write_csv

DETECTION_COLUMNS = [
    "method", "attack_kind", "eps", "score", "n", "inputs_attacked", "clean_acc", "robust_acc", "success_rate", "auroc",
    "auroc_successful", "tpr_at_fpr_1", "tpr_at_fpr_5", "tpr_at_fpr_10", "tpr_at_fpr", "fpr_test",
    "undetected_success_rate",
    "err_clean_pred", "err_adv_pred", "err_adv_true", "threshold", "attack_seconds",
]
_DETECTION_MD_COLUMNS = DETECTION_COLUMNS[:-2]


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


def _mode_line(meta: dict) -> str:
    """How the attacks were run: a cascade (each on what the earlier ones left) or every attack on every input."""
    order = " -> ".join(meta.get("order") or meta.get("methods") or [])
    if meta.get("cascade"):
        return (f"Run as a cascade, in the order {order}: each attack ran only on the inputs still standing for the "
                "score it is judged by (oblivious ones: for some score), so each row says what that attack added "
                "(`inputs_attacked`; the others keep their clean outcome) and the per-input worst case is the "
                "whole result. `--full` runs every attack on every input for per-attack tables. Detector-aware "
                "attacks that take a start begin at the best oblivious example (misclassified, lowest score).")
    return (f"Every attack ran on every input (`--full`), in the order {order}; detector-aware attacks that take "
            "a start begin at the best oblivious example (misclassified, lowest score)." if "cascade" in meta else
            "Every attack ran on every input.")


def detection_markdown(rows: list[dict], misclassification: list[dict], worst: list[dict], meta: dict,
                       sanity: list[dict] | None = None, gradients: list[dict] | None = None) -> str:
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
        _mode_line(meta), "",
        "Columns: `auroc` all attacked vs all clean inputs; `auroc_successful` successful adversarials vs "
        "correctly classified clean inputs; `tpr_at_fpr_K` share of successful adversarials flagged at the "
        "K % validation threshold, `tpr_at_fpr` the same at this run's FPR; `fpr_test` realised FPR on clean "
        "test data; `undetected_success_rate` share "
        "of all N inputs the attack misclassified without being flagged; `err_*` mean L2 reconstruction "
        "error under the predicted (clean, attacked) and the true (attacked) one-hot label.",
        "",
        markdown_table(rows, _DETECTION_MD_COLUMNS),
        "## Per-input worst case", "",
        "What a detector result is judged by: per eps and score, the share of all N inputs for which *any* "
        "attack of this run produced a misclassified, unflagged example (the union over attacks, per input; "
        "`per_input.csv` lists each attack's outcome per input), with its 95 % Wilson interval. Beside it, "
        "`eps0_floor`: the share of clean inputs already misclassified and not flagged, which an attacker gets "
        "without any perturbation (attacks count only inputs classified correctly when clean); read every "
        "worst case against it. `oblivious_rate` and `adaptive_rate`: the same union over the attacks that "
        "ignore the detector and over those that know it.", "",
        markdown_table(worst, digits=4),
        "## Input gradients of the scores", "",
        "Checked before attacking on clean validation images (`gradients.csv`): `ok`, or blocked (`missing`, `zero`, "
        "`nan`, `mismatch` with a finite difference). A blocked score with no surrogate is attacked through a "
        "gradient estimated from its values (finite differences along the logits' gradients) and by the gradient-free "
        "attacks; a surrogate (BPDA) is surer.", "",
        markdown_table(gradients or []),
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


WORST_CASE_COLUMNS = ["eps", "score", "n", "undetected_success_rate", "ci_low", "ci_high", "eps0_floor",
                      "oblivious_rate", "adaptive_rate", "attacks"]


def write_detection_report(result, out: str | os.PathLike, meta: dict) -> str:
    """Write detection.csv/.md, roc.csv/.png, misclassification.csv, worst_case.csv, per_input.csv,
    sanity.csv, security_curve.csv/.png, benchmark.json and, last, checksums.sha256 into ``out``;
    return the markdown."""
    import json

    from ..evaluation.worst_case import per_input_rows, security_curve, worst_case

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    worst = worst_case(result)
    write_csv(out / "detection.csv", result.rows, DETECTION_COLUMNS)
    write_csv(out / "roc.csv", result.roc, ["method", "eps", "score", "fpr", "tpr", "threshold"])
    write_csv(out / "misclassification.csv", result.misclassification)
    write_csv(out / "worst_case.csv", worst, WORST_CASE_COLUMNS)
    write_csv(out / "per_input.csv", per_input_rows(result))
    write_csv(out / "sanity.csv", result.sanity, ["check", "passed", "detail"])
    write_csv(out / "gradients.csv", result.gradients, ["score", "gradient", "surrogate", "action", "detail"])
    curve = security_curve(result.rows, worst)
    write_csv(out / "security_curve.csv", curve, ["score", "eps", "robust_acc", "undetected_success_rate"])
    plot_security_curve(curve, out / "security_curve.png", f"{meta['checkpoint']}, N = {meta['n']}")
    if result.roc:
        plot_roc(result.roc, out / "roc.png")
    markdown = detection_markdown(result.rows, result.misclassification, worst, meta, result.sanity, result.gradients)
    (out / "detection.md").write_text(markdown)
    (out / "benchmark.json").write_text(json.dumps({**meta, "attack_seconds": result.seconds}, indent=2) + "\n")
    # roc.csv is left out: the largest table, which committed reports drop (.gitignore); read_report reads it if there
    report_files = ["detection.csv", "detection.md", "roc.png", "misclassification.csv", "worst_case.csv",
                    "per_input.csv", "sanity.csv", "gradients.csv", "security_curve.csv", "security_curve.png",
                    "benchmark.json"]
    write_checksums(out, report_files)  # last: read_report refuses a report whose files changed afterwards
    return markdown
