"""``robustgen compare``: several attack reports side by side, one markdown table and one plot."""

from __future__ import annotations

from pathlib import Path

from .common import new_output_folder, timestamped

HELP = "lay several attack reports side by side: one markdown table, one plot"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help=HELP)
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report folders written by `robustgen attack`")
    p.add_argument("--out", help="folder for compare.md/.csv/.png (default: ./runs/compare/<timestamp>); must be new or empty")


def run(args) -> int:
    from ..evaluation.compare import ablation_view, compare_reports, score_table
    from ..reports.figures import plot_compare
    from ..reports.tables import markdown_table, write_csv

    out = new_output_folder(args.out, timestamped(Path("runs"), "compare"))
    rows, curves = compare_reports(args.reports)
    by_score = score_table(args.reports)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    sources = "\n".join(f"- `{r}`" for r in args.reports)
    (out / "compare.md").write_text(
        f"# Reports side by side\n\n{sources}\n\nPer eps and score: the classifier's robust accuracy under the "
        f"strongest attack of each report, and the per-input worst-case undetected-success (any attack of the "
        f"report).\n\n{table}\n\n## Oblivious and detector-aware attacks, per score\n\nPer report, eps and score: the "
        "share of all N inputs made misclassified and unflagged by any attack that ignores the detector "
        "(`oblivious`), by any that knows it (`detector_aware`) and by any at all (`worst_case`, with its 95 % "
        "Wilson interval), beside the eps-0 floor (clean inputs already misclassified and not flagged).\n\n"
        f"{markdown_table(by_score, digits=4)}\n\n## One row per report and eps\n\nThe table above, one column per score: "
        "`oblivious / detector-aware → any attack`, in percent of the N inputs, and the scores' eps-0 floors.\n\n"
        f"{markdown_table(ablation_view(by_score))}", encoding="utf-8")
    write_csv(out / "compare.csv", rows)
    write_csv(out / "scores.csv", by_score)
    plot_compare(curves, out / "compare.png")
    print(table)
    print(f"written to {out} (compare.md, compare.csv, scores.csv, compare.png)")
    return 0
