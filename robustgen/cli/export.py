"""``robustgen export``: a run's weights and manifest, as the shipped models are made; or, with
``--format torchscript|onnx``, the guarded model (classifier + detector + frozen threshold) as one
graph that a serving stack runs without robustgen."""

from __future__ import annotations

import json

from .common import add_autoencoder_arg, at_least, fraction, load_autoencoder, load_classifier, model_split

HELP = "write a run's weights and manifest, or the guarded model as one TorchScript/ONNX graph"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help=HELP)
    p.add_argument("--checkpoint", metavar="MODEL", help="run folder or checkpoint.pt to export (with "
                   "--format torchscript/onnx also a shipped model)")
    p.add_argument("--name", required=True, help="model name: letters, digits, '.', '-' and '_' (the files are "
                                                 "NAME.pt/.onnx and NAME.json inside --out)")
    p.add_argument("--out", required=True, help="folder for the two files (robustgen/pretrained to ship weights)")
    p.add_argument("--format", default="weights", choices=["weights", "torchscript", "onnx"],
                   help="weights: the state dict and manifest of a shipped model (default); torchscript / onnx: "
                        "classifier + detector score + threshold as one graph, outputs (logits, score, rejected)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="of --format weights")
    p.add_argument("--detector", help="--format torchscript/onnx: a detector saved with det.save() (it fixes model, "
                   "score and threshold)")
    p.add_argument("--score", help="--format torchscript/onnx without --detector: the score to fit on the model's "
                   "validation split")
    p.add_argument("--fpr", type=fraction, help="false-positive rate of that threshold (default 0.05)")
    p.add_argument("--n-val", type=at_least(1), help="fit on the first N validation images (default: all)")
    p.add_argument("--n-check", type=at_least(1), default=1000, help="test images the exported graph is checked "
                   "on against the Python detector (default 1000)")
    p.add_argument("--data-dir", help="folder with dataset files; default $ROBUSTGEN_DATA or ./data")
    add_autoencoder_arg(p)


def run(args) -> int:
    if args.format == "weights":
        return _weights(args)
    return _guarded(args)


def _weights(args) -> int:
    from ..pretrained import export

    extra = [f"--{k.replace('_', '-')}" for k in ("detector", "score", "fpr", "n_val", "autoencoder") if getattr(args, k)]
    if extra:
        raise ValueError(f"{', '.join(extra)} belong to --format torchscript or onnx (the guarded model)")
    if not args.checkpoint:
        raise ValueError("--checkpoint RUN is required: the run whose weights to export")
    manifest = export(args.checkpoint, args.name, args.out, args.dtype)
    record = json.loads(manifest.read_text())
    test = record["test"]
    if "recon" in test:  # a label-free autoencoder (the magnet scores'): no accuracy to report
        print(f"test reconstruction error {test['recon']:.4f} (L2; first 1,000: {test['recon_first_1000']:.4f}) "
              f"with the exported {args.dtype} weights")
    else:
        print(f"test accuracy {test['accuracy']:.4f} (first 1,000: {test['accuracy_first_1000']:.4f}) "
              f"with the exported {args.dtype} weights")
    print(f"wrote {manifest.with_suffix('.pt')} and {manifest}")
    return 0


def _guarded(args) -> int:
    import torch

    from ..detectors.deploy import export_guarded
    from ..detectors.detector import Detector, make_detector

    device = torch.device("cpu")
    if args.detector:
        clash = [f"--{k.replace('_', '-')}" for k in ("checkpoint", "score", "fpr", "n_val", "autoencoder") if getattr(args, k)]
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be used with --detector: the saved detector fixes its model, "
                             "score and threshold")
        det = Detector.load(args.detector, device)
    else:
        if not args.checkpoint or not args.score:
            raise ValueError(f"--format {args.format} needs --detector FILE, or --checkpoint MODEL and --score NAME")
        model = load_classifier(args, device)
        autoencoder = load_autoencoder(args, model, [args.score], device)
        x_val, _ = model_split(args, model, "val", limit=args.n_val)
        det = make_detector(model, args.score, autoencoder=autoencoder).fit(x_val, fpr=args.fpr or 0.05)
    if not det.model.meta or not det.model.meta.get("config"):
        raise ValueError("the detector's model records no dataset; the exported graph cannot be checked")
    x_check, _ = model_split(args, det.model, "test", limit=args.n_check)
    manifest = export_guarded(det, args.out, args.name, fmt=args.format, check=x_check, detector_file=args.detector)
    record = json.loads(manifest.read_text())
    check = record["check"]
    print(f"guarded graph: `{record['score']}` above {record['threshold']:.6g} rejects (fitted at FPR "
          f"{record['fpr']:g}); on {check['n']} test images the exported graph agrees with the Python detector "
          f"(max score difference {check['max_score_difference']:.2e})")
    print(f"wrote {args.out}/{record['file']} and {manifest}")
    return 0
