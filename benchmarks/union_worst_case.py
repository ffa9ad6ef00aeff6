"""The per-input worst case over several attack reports of the same model, inputs and thresholds
(robustgen.evaluation.union): an input counts when any attack of any report made it misclassified
and unflagged. For adding attacks to a finished report (another precision, another budget) without
running it again.

    python benchmarks/union_worst_case.py reports/robust-mnist-conv4-pgd/attack-strong-confidence-eps0.3-n1000 \\
        reports/robust-mnist-conv4-pgd/attack-autoattack-apgd-bf16-eps0.3-n1000 --json ...
    python benchmarks/union_worst_case.py ... --first 500     # on the first 500 inputs only

Refuses reports of other weights or data, of another N, or whose thresholds differ by more than
0.01 % for a score they share.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from robustgen.evaluation.union import union_worst_case

ROOT = Path(__file__).resolve().parents[1]


def _from_root(folder: str) -> str:
    """A report folder relative to the repository when it lies in it (so a committed JSON names
    committed folders), else as given."""
    path = Path(folder).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", help="attack report folders")
    ap.add_argument("--first", type=int, help="count only the first FIRST test inputs (default: all the reports')")
    ap.add_argument("--json", help="also write the result to this JSON file (never over an existing one)")
    args = ap.parse_args()
    if args.json and os.path.exists(args.json):
        raise SystemExit(f"{args.json} exists; robustgen does not overwrite results")
    try:
        rows = union_worst_case(args.reports, first=args.first)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    for r in rows:
        print(f"eps {r['eps']:g}, {r['score']}: {round(r['undetected_success_rate'] * r['n'])} of {r['n']} = "
              f"{100 * r['undetected_success_rate']:.1f} % [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] "
              f"over {len(r['attacks'])} attacks")
    if args.json:
        with open(args.json, "w") as f:
            paths = [_from_root(r) for r in args.reports]
            json.dump({"reports": paths, **({"first": args.first} if args.first else {}), "rows": rows},
                      f, indent=2)


if __name__ == "__main__":
    main()
