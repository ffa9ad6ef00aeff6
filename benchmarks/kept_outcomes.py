"""What an unfinished ``robustgen attack`` run has measured so far: per kept outcome (one finished
attack, ``DIR/outcomes/*.pt``) the classifier's robust accuracy and the share of inputs made
misclassified and unflagged by one score's detector, and the per-input worst case over the kept
attacks. For a run cut by a session's end, before ``robustgen attack --resume DIR`` finishes it (its
report then supersedes these figures).

    python benchmarks/kept_outcomes.py /work/bench/c4-strong --checkpoint robust-mnist-conv4 \\
        --pretrained-dir /work/bench/c4-pretrained --score confidence --csv reports/robust-mnist-conv4/kept-outcomes-eps0.3.csv

The threshold is fitted as ``robustgen attack`` fits it (all validation images, 5 % FPR), the inputs
are the first N test images (N read from the outcomes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import robustgen
from robustgen.checkpoint import safe_load
from robustgen.evaluation.store import FORMAT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", help="the unfinished report folder (holding outcomes/)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--pretrained-dir", help="load --checkpoint NAME from this folder of exported weights (NAME.pt, "
                   "NAME.json) instead of the package's")
    p.add_argument("--score", default="confidence")
    p.add_argument("--fpr", type=float, default=0.05)
    p.add_argument("--csv", help="write the rows here")
    args = p.parse_args()
    folder = Path(args.report) / "outcomes"
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise SystemExit(f"{folder}: no kept outcomes")
    # an exported model loads by its manifest's path, SHA-256 checked (robustgen.load_model)
    model = robustgen.load_model(Path(args.pretrained_dir) / f"{args.checkpoint}.json" if args.pretrained_dir
                                 else args.checkpoint)
    dataset = model.meta["dataset"]["name"]
    det = robustgen.make_detector(model, args.score).fit(robustgen.load_dataset(dataset, "val")[0], fpr=args.fpr)
    rows, worst, y = [], None, None
    for path in files:
        record = safe_load(path)  # SHA-256 checked, as --resume reads it
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise SystemExit(f"{path} is not a kept outcome")
        pred, score = record["pred"].numpy(), record["scores"][args.score].numpy()
        if y is None:  # one run: every outcome is of the same first N test images
            y = robustgen.load_dataset(dataset, "test", limit=len(pred))[1].numpy()
        if len(pred) != len(y):
            raise SystemExit(f"{path} holds {len(pred)} inputs, the others {len(y)}: not one run's outcomes")
        broken = (pred != y) & (score <= det.threshold)
        worst = broken if worst is None else worst | broken
        rows.append({"outcome": path.stem, "n": len(pred), "robust_acc": float((pred == y).mean()),
                     "undetected_success": float(broken.mean()), "seconds": round(record["seconds"], 1)})
    rows.append({"outcome": "worst case over the kept attacks", "n": len(worst), "robust_acc": float("nan"),
                 "undetected_success": float(worst.mean()), "seconds": float("nan")})
    for r in rows:
        print(r)
    print(f"threshold {det.threshold:.6g} ({args.score}, {args.fpr:g} FPR on {dataset} validation)")
    if args.csv:
        import pandas as pd

        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).assign(threshold=det.threshold).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
