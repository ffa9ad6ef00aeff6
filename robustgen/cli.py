"""``robustgen`` command line: the only place that prints or exits."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .config import ConfigError
from .data import DataError
from .runs import RunError

EXIT_USAGE = 2


def _add_common_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="RUN", help="run folder or checkpoint.pt (default: newest run under --runs-dir)")
    p.add_argument("--runs-dir", default="runs", help="where runs live (default: ./runs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--data-dir", help="folder with dataset files (EMNIST); default $ROBUSTGEN_DATA or ./data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustgen", description=(
        "Style-memory networks (Wiyatno & Orchard, 2018): train a generative classifier, "
        "detect adversarial inputs, reproduce the paper."))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a style-memory network into a new run folder")
    p.add_argument("--config", default="fast-mnist", help="preset name (smoke, fast-mnist, paper-mnist, "
                   "paper-emnist) or a TOML file (default: fast-mnist)")
    p.add_argument("--dataset", help="mnist | emnist-letters | idx:PATH")
    p.add_argument("--data-dir", help="folder with dataset files (EMNIST); default $ROBUSTGEN_DATA or ./data")
    p.add_argument("--download", action="store_true", help="let torchvision download EMNIST if its files are missing")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--name", help="run name (the folder is <timestamp>-<name>)")
    p.add_argument("--runs-dir", help="where run folders are made (default: ./runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.noise_std=0.2 (repeatable)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run in its own folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("eval", help="test accuracy and reconstruction errors of a trained run")
    _add_common_model_args(p)
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--out", help="folder for eval-<split>.json/.md (default: the run folder)")
    return parser


def _train(args) -> int:
    from .config import load_config
    from .train import train_run

    if args.resume:
        for flag in ("dataset", "batch_size", "lr", "seed", "name", "runs_dir"):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag.replace('_', '-')} cannot change a run being resumed; "
                                  "only --epochs and --device can")
        if args.overrides:
            raise ConfigError("--set cannot change a run being resumed; start a new run instead")
        run_dir = train_run(resume=args.resume, progress=not args.quiet, epochs=args.epochs, device=args.device)
    else:
        flags = {"data.dataset": args.dataset, "data.data_dir": args.data_dir, "train.epochs": args.epochs,
                 "train.batch_size": args.batch_size, "train.lr": args.lr, "train.seed": args.seed,
                 "train.device": args.device, "name": args.name, "runs_dir": args.runs_dir,
                 "data.download": True if args.download else None}
        overrides = [f"{k}={_toml(v)}" for k, v in flags.items() if v is not None] + args.overrides
        cfg = load_config(args.config, overrides)
        run_dir = train_run(cfg, progress=not args.quiet)
    from .checkpoint import load_checkpoint

    extra = load_checkpoint(run_dir)["extra"]
    print(f"validation accuracy {extra['val_accuracy']:.4f}")
    print(f"run folder: {run_dir}")
    return 0


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _model_path(args) -> Path:
    from .runs import latest_run

    return Path(args.checkpoint) if args.checkpoint else latest_run(args.runs_dir)


def _eval(args) -> int:
    import torch

    from .checkpoint import load_model
    from .data import load_dataset
    from .model import check_class_count
    from .reports import markdown_table
    from .runs import resolve_device, write_json
    from .train import evaluate

    device = resolve_device(args.device)
    model = load_model(_model_path(args), device)
    data = model.meta["config"]["data"]
    x, y = load_dataset(data["dataset"], args.split, args.data_dir or data["data_dir"], val_size=data["val_size"])
    check_class_count(model, y, data["dataset"])
    with torch.inference_mode():
        result = evaluate(model, x, y)
    result = {"checkpoint": model.meta["path"], "dataset": data["dataset"], "split": args.split,
              "epoch": model.meta["epoch"], **result}
    rows = [{"metric": "accuracy", "value": result["accuracy"]},
            {"metric": "recon error, predicted softmax (L2)", "value": result["recon_pred_softmax"]},
            {"metric": "recon error, predicted one-hot label (L2)", "value": result["recon_pred_onehot"]},
            {"metric": "recon error, true label (L2)", "value": result["recon_true"]}]
    folder = Path(args.out) if args.out else Path(model.meta["path"]).parent
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{data['dataset']} {args.split} split, N = {result['n']}, checkpoint epoch {result['epoch']}"
    table = markdown_table(rows)
    write_json(folder / f"eval-{args.split}.json", result)
    (folder / f"eval-{args.split}.md").write_text(f"# Evaluation\n\n{title} (`{result['checkpoint']}`)\n\n{table}")
    print(f"{title}\n")
    print(table)
    print(f"saved {folder / f'eval-{args.split}.json'} and .md")
    return 0


COMMANDS = {"train": _train, "eval": _eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError, CheckpointError, RunError, ValueError, FileNotFoundError) as e:
        print(f"robustgen {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = " (resume training with `robustgen train --resume RUN`)" if args.command == "train" else ""
        print(f"robustgen {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
