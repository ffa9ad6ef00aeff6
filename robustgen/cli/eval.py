"""``robustgen eval``: accuracy, reconstruction errors and style measures of a trained model."""

from __future__ import annotations

import json
from pathlib import Path

from .common import add_model_args, model_home, model_path, model_split

HELP = "test accuracy and reconstruction errors of a trained run"


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help=HELP)
    add_model_args(p)
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--out", help="folder for eval-<split>.json/.md (default: the run folder); an existing "
                                 "eval-<split>.json or .md there is never overwritten")


def run(args) -> int:
    import torch

    from ..inference import evaluate
    from ..integrity import sha256_state, sha256_tensors
    from ..pretrained import load_model
    from ..reports.tables import markdown_table
    from ..runs import resolve_device

    device = resolve_device(args.device)
    model = load_model(model_path(args), device)
    folder = Path(args.out) if args.out else model_home(args, model)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file, not a folder")
    target = folder / f"eval-{args.split}.json"
    for path in (target, target.with_suffix(".md")):
        if path.exists():
            raise FileExistsError(f"{path} already exists; pass --out NEW_FOLDER so the earlier evaluation is kept")
    data = model.meta["config"]["data"]
    x, y = model_split(args, model, args.split)
    with torch.inference_mode():
        result = evaluate(model, x, y)
    result = {"checkpoint": model.meta["path"], "dataset": data["dataset"], "split": args.split,
              "epoch": model.meta["epoch"], "model_sha256": sha256_state(model), "data_sha256": sha256_tensors(x, y),
              **result}
    if model.label_free:  # an autoencoder: its reconstruction error is all there is to report
        result = {k: v for k, v in result.items() if k not in ("accuracy", "recon_pred_onehot", "recon_true")}
        rows = [{"metric": "recon error of the label-free autoencoder (L2)", "value": result["recon_pred_softmax"]}]
    else:
        rows = [{"metric": "accuracy", "value": result["accuracy"]},
                {"metric": "recon error, predicted softmax (L2)", "value": result["recon_pred_softmax"]},
                {"metric": "recon error, predicted one-hot label (L2)", "value": result["recon_pred_onehot"]},
                {"metric": "recon error, true label (L2)", "value": result["recon_true"]}]
    if args.split == "test" and not model.label_free:  # what the style memory holds: the probe is fitted on validation styles
        from ..evaluation.style_measures import style_measures

        x_val, y_val = model_split(args, model, "val")
        style = style_measures(model, x_val, y_val, x, y)
        result["style"] = style
        rows += [{"metric": f"class probe accuracy from the style alone (chance {style['probe_chance']:.2f})",
                  "value": style["probe_accuracy"]},
                 {"metric": f"label sensitivity of the decoder (first {style['n_decoded']} images)",
                  "value": style["label_sensitivity"]},
                 {"metric": "decoding under label c classified as c (share of style x label pairs)",
                  "value": style["drawn_as_label"]}]
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{data['dataset']} {args.split} split, N = {result['n']}, checkpoint epoch {result['epoch']}"
    table = markdown_table(rows)
    for path, text in ((target, json.dumps(result, indent=2) + "\n"),
                       (target.with_suffix(".md"), f"# Evaluation\n\n{title} (`{result['checkpoint']}`)\n\n{table}")):
        with path.open("x") as f:  # exclusive: a file made meanwhile by another run is not written over
            f.write(text)
    print(f"{title}\n")
    print(table)
    print(f"saved {target} and .md")
    return 0
