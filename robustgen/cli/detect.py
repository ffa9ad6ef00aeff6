"""``robustgen detect``: score image files with a detector; one CSV row per image."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import add_autoencoder_arg, add_model_args, at_least, fraction, load_autoencoder, load_classifier, model_split

HELP = "score image files with a detector; one CSV row per image"
EXIT_USAGE = 2


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help=HELP)
    add_model_args(p)
    add_autoencoder_arg(p)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help=".npy/.npz arrays, IDX image files, PNG/JPEG images or folders of them")
    p.add_argument("--out", required=True, help="CSV file to write (must not exist)")
    p.add_argument("--score", help="detector score (default: recon)")
    p.add_argument("--n-val", type=at_least(1), help="fit the thresholds on the first N clean validation images "
                   "(default: all of them, 5,000 for MNIST; fewer make quick runs, with a noisier threshold)")
    p.add_argument("--fpr", type=fraction, help="false-positive rate of the threshold (default 0.05)")
    p.add_argument("--detector", help="a detector saved with det.save() (it carries its model, score and threshold, "
                   "so --checkpoint, --score and --fpr cannot be given with it); default: fit one on the model's "
                   "validation split")
    p.add_argument("--uint8", action="store_true", help="read uint8 arrays as pixel / 255")
    p.add_argument("--fail-on-flag", action="store_true", help="exit with status 1 when any input is flagged")
    p.add_argument("--batch-size", type=at_least(1), default=500)


def run(args) -> int:
    import numpy as np

    from ..data.inputs import read_inputs
    from ..detectors.detector import Detector, make_detector
    from ..reports.tables import write_csv
    from ..runs import resolve_device

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new --out so nothing is overwritten")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of --out ({out.parent}) does not exist")
    device = resolve_device(args.device)
    if args.detector:
        fixed = ("checkpoint", "score", "fpr", "n_val", "autoencoder")
        clash = [f"--{f.replace('_', '-')}" for f in fixed if getattr(args, f) is not None]
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be used with --detector: the saved detector fixes its model, "
                             "score and threshold")
        det = Detector.load(args.detector, device)
        fitted = f"loaded from {args.detector}"
    else:
        model = load_classifier(args, device)
        score = args.score or "recon"
        autoencoder = load_autoencoder(args, model, [score], device)
        data = model.meta["config"]["data"]
        x_val, _ = model_split(args, model, "val", limit=args.n_val)
        fpr = 0.05 if args.fpr is None else args.fpr
        det = make_detector(model, score, args.batch_size, autoencoder).fit(x_val, fpr=fpr)
        fitted = f"fitted at FPR {fpr:g} on the {len(x_val)} validation images of {data['dataset']}"
    batches, errors = read_inputs(args.input, uint8=args.uint8, shape=det.model.input_shape)
    for message in errors:
        print(f"robustgen detect: skipped {message}", file=sys.stderr)
    rows = []
    for batch in batches:
        report, flagged = det.detect(batch.images)
        rows += [{"source": s, "index": i, "prediction": int(p), "confidence": float(c), "score": float(v),
                  "threshold": det.threshold, "flagged": bool(f)}
                 for s, i, p, c, v, f in zip(batch.sources, batch.indices, report["predictions"],
                                             report["confidences"], report["scores"], flagged)]
    if not rows:
        raise ValueError("no input could be read; nothing was scored")
    write_csv(out, rows, ["source", "index", "prediction", "confidence", "score", "threshold", "flagged"])
    n_flagged = int(np.sum([r["flagged"] for r in rows]))
    print(f"scored {len(rows)} images; {n_flagged} flagged ({n_flagged / len(rows):.1%}) by `{det.score_name}` "
          f"above {det.threshold:.4g} (detector {fitted})")
    print(f"wrote {out}")
    if errors:
        return EXIT_USAGE
    return 1 if (args.fail_on_flag and n_flagged) else 0
