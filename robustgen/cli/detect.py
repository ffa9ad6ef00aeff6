"""``robustgen detect``: score image files with a detector; one CSV row per image, written as it goes."""

from __future__ import annotations

import sys

from .common import (
    add_autoencoder_arg,
    add_foreign_args,
    add_model_args,
    at_least,
    fraction,
    load_autoencoder,
    load_classifier,
    model_split,
    score_detector,
)

HELP = "score image files with a detector; one CSV row per image"
EXIT_USAGE = 2


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help=HELP)
    add_model_args(p)
    add_autoencoder_arg(p)
    add_foreign_args(p)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help=".npy/.npz arrays, IDX image files, PNG/JPEG images or folders of them")
    p.add_argument("--out", required=True, help="CSV file to write (must not exist, unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted --out CSV after its last complete "
                   "row (same --input and detector; pass --detector FILE so the threshold is the same)")
    p.add_argument("--score", help="detector score: a name, or package.module:function (a factory given the model, "
                   "returning a score function) (default: recon; confidence for --model)")
    p.add_argument("--n-val", type=at_least(1), help="fit the thresholds on the first N clean validation images "
                   "(default: all of them, 5,000 for MNIST; fewer make quick runs, with a noisier threshold)")
    p.add_argument("--fpr", type=fraction, help="false-positive rate of the threshold (default 0.05)")
    p.add_argument("--detector", help="a detector saved with det.save() (it carries its model, score and threshold, "
                   "so --checkpoint, --score and --fpr cannot be given with it); default: fit one on the model's "
                   "validation split")
    p.add_argument("--uint8", action="store_true", help="read uint8 arrays as pixel / 255")
    p.add_argument("--fail-on-flag", action="store_true", help="exit with status 1 when any input is flagged")
    p.add_argument("--batch-size", type=at_least(1), default=500)
    p.add_argument("--chunk", type=at_least(1), default=4096, help="images read, scored and written at a time "
                   "(memory is bounded by it; default 4096)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")


def run(args) -> int:
    from pathlib import Path

    from ..detectors.detector import Detector
    from ..detectors.streaming import sidecar
    from ..model import StyleMemoryNet
    from ..runs import resolve_device

    out = Path(args.out)
    if out.exists() and not args.resume:
        raise ValueError(f"{out} already exists; choose a new --out so nothing is overwritten, or pass --resume to "
                         "continue it")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of --out ({out.parent}) does not exist")
    device = resolve_device(args.device)
    if args.detector:
        fixed = ("checkpoint", "model", "score", "fpr", "n_val", "autoencoder")
        clash = [f"--{f.replace('_', '-')}" for f in fixed if getattr(args, f) is not None]
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be used with --detector: the saved detector fixes its model, "
                             "score and threshold")
        det = Detector.load(args.detector, device)
        fitted = f"loaded from {args.detector}"
    else:
        model = load_classifier(args, device)
        score = args.score or ("recon" if isinstance(model, StyleMemoryNet) else "confidence")
        autoencoder = load_autoencoder(args, model, [score], device)
        data = model.meta["config"]["data"]
        x_val, _ = model_split(args, model, "val", limit=args.n_val)
        fpr = 0.05 if args.fpr is None else args.fpr
        det = score_detector(model, score, args.batch_size, autoencoder).fit(x_val, fpr=fpr)
        fitted = f"fitted at FPR {fpr:g} on the {len(x_val)} validation images of {data['dataset']}"
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(unit="img", desc="detect", file=sys.stderr)

    def total(n: int) -> None:
        if bar is not None:
            bar.total = n
            bar.refresh()

    try:
        summary = det.detect_files(args.input, out, uint8=args.uint8, chunk=args.chunk, resume=args.resume,
                                   on_error=lambda m: print(f"robustgen detect: skipped {m}", file=sys.stderr),
                                   on_progress=bar.update if bar is not None else None, on_total=total)
    finally:
        if bar is not None:
            bar.close()
    if summary.n == 0:  # only the header was written: no file is better than an empty table
        out.unlink(missing_ok=True)
        sidecar(out).unlink(missing_ok=True)
        raise ValueError("no input could be read; nothing was scored")
    resumed = f" ({summary.resumed} of them already in {out}, resumed after)" if summary.resumed else ""
    print(f"scored {summary.n} images{resumed}; {summary.flagged} flagged ({summary.flagged / summary.n:.1%}) by "
          f"`{det.score_name}` above {det.threshold:.4g} (detector {fitted})")
    print(f"wrote {out}")
    if summary.errors:
        return EXIT_USAGE
    return 1 if (args.fail_on_flag and summary.flagged) else 0
