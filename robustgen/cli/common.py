"""What several commands share: argument types that refuse bad values where they enter, the model
arguments, and where a command's output goes (never over something that exists)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path


# -- argument types: argparse turns their ArgumentTypeError into a one-line usage error ------------
def _number(kind, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def at_least(low: int):
    """An int argument of at least ``low``."""
    def parse(text: str) -> int:
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"
    return parse


def positive_float(text: str) -> float:
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def fraction(text: str) -> float:
    """A float strictly between 0 and 1 (a false-positive rate)."""
    value = _number(float, text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


SEED_MAX = 2**32 - 1  # numpy's range; per-batch and per-epoch seeds (seed * 1,000,003 + i) stay within torch's


def seed_value(text: str) -> int:
    """A random seed: a whole number in [0, 2**32 - 1]."""
    value = _number(int, text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed must be a whole number in [0, {SEED_MAX}], got {value}")
    return value


def split_list(text: str, what: str) -> list[str]:
    """Comma-separated names, each once: a repeated name would duplicate report rows."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{what} needs at least one value")
    twice = sorted({i for i in items if items.count(i) > 1})
    if twice:
        raise ValueError(f"--{what} lists {', '.join(twice)} more than once")
    return items


# -- the model a command works on ------------------------------------------------------------------
def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="MODEL",
                   help="a shipped model (robustgen.list_pretrained()), a run folder or a checkpoint.pt "
                        "(default: the most recently trained run under --runs-dir)")
    p.add_argument("--runs-dir", default="runs", help="where runs live (default: ./runs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--data-dir", help="folder with dataset files; default $ROBUSTGEN_DATA or ./data")


def add_autoencoder_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--autoencoder", metavar="MODEL", help="the label-free autoencoder of the magnet scores: the "
                   "shipped mnist-ae or fashion-ae, or a run of `robustgen train --config mnist-ae` (or fashion-ae) on the "
                   "model's dataset")


def add_foreign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="SPEC", help="any classifier instead of --checkpoint: a TorchScript file, or "
                   "package.module:function returning a torch.nn.Module that maps float images (N, C, H, W) in [0, 1] "
                   "to logits (N, classes); needs --dataset")
    p.add_argument("--dataset", help="with --model: the data (mnist, fashion-mnist, ..., folder:PATH, idx:PATH)")
    p.add_argument("--feature-layer", metavar="NAME", help="with --model: the layer whose output the mahalanobis "
                   "score reads (a name from model.named_modules())")


def load_classifier(args, device):
    """The classifier named by --checkpoint, or any module named by --model on --dataset (a label-free
    autoencoder is refused)."""
    from ..model import check_classifier
    from ..pretrained import load_model

    if getattr(args, "model", None) or getattr(args, "dataset", None) or getattr(args, "feature_layer", None):
        return _foreign(args, device)
    path = model_path(args)
    model = load_model(path, device)
    check_classifier(model, f"--checkpoint {path}")
    return model


def _foreign(args, device):
    from ..classifier import Classifier
    from ..data import dataset_info
    from ..foreign import load_module

    if not args.model:
        raise ValueError("--dataset and --feature-layer go with --model (the classifier they describe)")
    if args.checkpoint:
        raise ValueError("give --model or --checkpoint, not both")
    if not args.dataset:
        raise ValueError("--model needs --dataset: the data its images come from (mnist, folder:PATH, ...)")
    info = dataset_info(args.dataset, args.data_dir)
    model = Classifier(load_module(args.model, device), info.shape, feature_layer=args.feature_layer,
                       name=Path(args.model).stem if ":" not in args.model else args.model, num_classes=info.num_classes)
    model.meta.update(dataset={"name": info.name, "num_classes": info.num_classes, "class_names": list(info.class_names),
                               "shape": list(info.shape)},
                      config={"data": {"dataset": args.dataset, "data_dir": args.data_dir, "val_size": None}})
    return model


def load_autoencoder(args, model, scores: list[str], device):
    """The --autoencoder the magnet scores among ``scores`` need (None when none is asked for)."""
    from ..detectors.baselines import check_autoencoder
    from ..detectors.registry import AUTOENCODER_SCORES
    from ..pretrained import load_model

    wanted = [s for s in scores if s in AUTOENCODER_SCORES]
    if not args.autoencoder:
        if wanted:
            raise ValueError(f"--score {','.join(wanted)} needs --autoencoder (train one with robustgen train "
                             "--config mnist-ae, or fashion-ae)")
        return None
    if not wanted:
        raise ValueError(f"--autoencoder is used only by the scores {', '.join(AUTOENCODER_SCORES)}; none was asked for")
    return check_autoencoder(load_model(args.autoencoder, device), model)


def score_detector(model, score: str, batch_size: int, autoencoder):
    """The (unfitted) detector of a score name, or of a factory package.module:function given the model."""
    from ..detectors.detector import Detector, make_detector
    from ..detectors.registry import AUTOENCODER_SCORES, SCORES
    from ..foreign import is_factory, load_score_factory

    if score in SCORES or not is_factory(score):  # an unknown name is refused by make_detector, naming the scores
        return make_detector(model, score, batch_size, autoencoder if score in AUTOENCODER_SCORES else None)
    name, fn, surrogate = load_score_factory(score, model)
    return Detector.from_function(model, fn, name, surrogate, batch_size)


def model_path(args) -> str | Path:
    from ..runs import latest_run

    return args.checkpoint if args.checkpoint else latest_run(args.runs_dir)


def model_split(args, model, split: str, limit: int | None = None):
    """(x, y) of ``split`` of the dataset the model was trained on (its data folder unless --data-dir),
    checked against the model's input shape and class count."""
    from ..data import load_dataset
    from ..model import check_class_count, check_input_shape

    data = model.meta["config"]["data"]
    x, y = load_dataset(data["dataset"], split, args.data_dir or data["data_dir"], val_size=data["val_size"], limit=limit)
    check_input_shape(model, x.shape[1:], f"{data['dataset']} ({split})")
    check_class_count(model, y, data["dataset"])
    return x, y


def model_home(args, model) -> Path:
    """Where a model's outputs go: its run folder, ``<runs-dir>/pretrained/NAME`` for a shipped model,
    ``<runs-dir>/models/NAME`` for any other (--model)."""
    if model.meta.get("pretrained"):
        return Path(args.runs_dir) / "pretrained" / model.meta["pretrained"]
    if model.meta.get("foreign"):
        return Path(args.runs_dir) / "models" / "".join(c if c.isalnum() or c in "-_." else "-" for c in model.meta["name"])
    return Path(model.meta["path"]).parent


def new_output_folder(out: str | None, default: Path) -> Path:
    """``out`` (or ``default``) if it is a new or empty folder; anything else is refused."""
    folder = Path(out) if out else default
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file, not a folder; choose a new folder for the report")
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"output folder {folder} is not empty; choose a new --out so no earlier report is overwritten")
    return folder


def timestamped(base: Path, kind: str, suffix: str = "") -> Path:
    return base / kind / (time.strftime("%Y%m%d-%H%M%S") + suffix)
