"""Record a shipped model's figures under attack in robustgen/pretrained/measured.csv (what
`robustgen models` prints), computed from the reports that measured them (robustgen.evaluation.measured):

    python benchmarks/record_measured.py robust-mnist-conv4-pgd \\
        --autoattack reports/robust-mnist-conv4-pgd/attack-strong-confidence-eps0.3-n1000 \\
        --worst-case reports/robust-mnist-conv4-pgd/attack-strong-confidence-eps0.3-n1000

Paths are relative to the repository (so the row names committed reports). A model already recorded
is refused unless --replace; a model that is not shipped is refused.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from robustgen.evaluation.measured import measured_row, record
from robustgen.pretrained import list_pretrained, pretrained_dir

ROOT = Path(__file__).resolve().parents[1]


def _from_root(path: str) -> str:
    """A path relative to the repository, so the row names committed reports."""
    full = Path(path).resolve()
    if not full.is_relative_to(ROOT):
        raise SystemExit(f"{path} is not inside the repository {ROOT}; record committed reports only")
    return full.relative_to(ROOT).as_posix()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model's name")
    ap.add_argument("--autoattack", required=True, help="the report whose AutoAttack row to record")
    ap.add_argument("--worst-case", required=True, help="a report, or a union JSON of benchmarks/union_worst_case.py")
    ap.add_argument("--score", default="confidence", help="the detector score of the worst case (default: confidence)")
    ap.add_argument("--replace", action="store_true", help="replace the model's recorded row")
    args = ap.parse_args()
    if args.model not in list_pretrained():
        raise SystemExit(f"{args.model} is not a shipped model ({', '.join(list_pretrained())})")
    path = Path(str(pretrained_dir())) / "measured.csv"
    try:
        row = measured_row(args.model, _from_root(args.autoattack), _from_root(args.worst_case), args.score, root=ROOT)
        record(row, path, replace=args.replace)
    except (ValueError, OSError, KeyError) as e:
        raise SystemExit(str(e)) from None
    floor = "not recorded" if math.isnan(row["eps0_floor"]) else f"{100 * row['eps0_floor']:.1f} %"
    print(f"{args.model}: AutoAttack {100 * row['autoattack_accuracy']:.1f} % at eps {row['autoattack_eps']:g} "
          f"(N = {row['autoattack_n']}), worst case {100 * row['worst_case']:.1f} % with {row['score']} "
          f"(N = {row['worst_case_n']}, {row['worst_case_precision']} attacks, floor {floor})")


if __name__ == "__main__":
    main()
