"""``robustgen export``: a run's weights and manifest, as the shipped models are made."""

from __future__ import annotations

import json

HELP = "write a run's weights (weights only, float16) and manifest, as the shipped models are"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help=HELP)
    p.add_argument("--checkpoint", metavar="RUN", required=True, help="run folder or checkpoint.pt to export")
    p.add_argument("--name", required=True, help="model name: letters, digits, '.', '-' and '_' (the files are "
                                                 "NAME.pt and NAME.json inside --out)")
    p.add_argument("--out", required=True, help="folder for the two files (robustgen/pretrained to ship them)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])


def run(args) -> int:
    from ..pretrained import export

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
