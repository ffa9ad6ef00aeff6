"""``robustgen train``: train a style-memory network into a new run folder, or resume one."""

from __future__ import annotations

from ..training.config import ConfigError, list_presets
from .common import at_least, positive_float, seed_value

HELP = "train a style-memory network into a new run folder"


def add_parser(sub) -> None:
    p = sub.add_parser("train", help=HELP)
    p.add_argument("--config", help=f"preset name ({', '.join(list_presets())}) or a TOML file (default: fast-mnist)")
    p.add_argument("--dataset", help="mnist | fashion-mnist | emnist-letters | cifar10 | svhn | colored-mnist | "
                                     "idx:PATH | folder:PATH")
    p.add_argument("--data-dir", help="folder with dataset files; default $ROBUSTGEN_DATA or ./data")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset if its files are missing")
    p.add_argument("--epochs", type=at_least(1))
    p.add_argument("--batch-size", type=at_least(1))
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--seed", type=seed_value)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--name", help="run name (the folder is <timestamp>-<name>)")
    p.add_argument("--runs-dir", help="where run folders are made (default: ./runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.noise_std=0.2 (repeatable)")
    p.add_argument("--init", metavar="MODEL", help="fine-tune: start from these weights (a shipped model's name, "
                   "a run folder, a checkpoint or an exported model) instead of a random initialisation")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run in its own folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from ..training.config import load_config, toml_value
    from ..training.train import train_run

    if args.resume:
        fixed = ("config", "dataset", "data_dir", "batch_size", "lr", "seed", "name", "runs_dir", "init")
        for flag in fixed:
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag.replace('_', '-')} cannot change a run being resumed; "
                                  "only --epochs and --device can")
        if args.download:
            raise ConfigError("--download cannot change a run being resumed; only --epochs and --device can")
        if args.overrides:
            raise ConfigError("--set cannot change a run being resumed; start a new run instead")
        run_dir = train_run(resume=args.resume, progress=not args.quiet, epochs=args.epochs, device=args.device)
    else:
        flags = {"data.dataset": args.dataset, "data.data_dir": args.data_dir, "train.epochs": args.epochs,
                 "train.batch_size": args.batch_size, "train.lr": args.lr, "train.seed": args.seed,
                 "train.device": args.device, "train.init": args.init, "name": args.name, "runs_dir": args.runs_dir,
                 "data.download": True if args.download else None}
        overrides = [f"{k}={toml_value(v)}" for k, v in flags.items() if v is not None] + args.overrides
        cfg = load_config(args.config or "fast-mnist", overrides)
        run_dir = train_run(cfg, progress=not args.quiet)  # under torchrun only rank 0 shows progress
    from ..distributed import shutdown

    shutdown()
    if run_dir is None:  # a torchrun worker other than rank 0: rank 0 reports
        return 0
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir)
    extra = ckpt["extra"]
    if ckpt["config"]["model"].get("label_free"):
        print(f"validation reconstruction error {extra['val_recon']:.4f} (L2, label-free autoencoder)")
    else:
        print(f"validation accuracy {extra['val_accuracy']:.4f}")
    print(f"run folder: {run_dir}")
    return 0
