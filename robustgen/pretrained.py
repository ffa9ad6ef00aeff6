"""Pretrained models shipped inside the package: ``load_model("robust-mnist")`` works offline,
seconds after install, with no training.

Each shipped model is two files in ``robustgen/pretrained/``:

- ``NAME.pt``: the weights only (a state dict, float16 by default: half the size, and the weights
  the reports were measured with), loadable with ``torch.load(weights_only=True)``;
- ``NAME.json``: its manifest: SHA-256 of ``NAME.pt``, model spec, the resolved training config,
  dataset record, the training run's last ``metrics.csv`` row, and the clean accuracy of exactly
  these weights on the first 1,000 and on all test images.

The SHA-256 is checked on every load, so a corrupted or swapped file is refused. ``export`` makes
both files from a finished run (``robustgen export``); that is how the shipped ones were made.
"""

from __future__ import annotations

import csv
import json
import os
import re
from importlib import resources
from pathlib import Path

import torch

from .checkpoint import CheckpointError, atomic_save, load_checkpoint, model_from_checkpoint, safe_load
from .evaluation.measured import parse_row
from .integrity import sha256_file
from .model import StyleMemoryNet

FORMAT = "robustgen-pretrained"

# The model to load first for each dataset: the shipped classifier that holds best under the strongest
# attack that knows its detector (README "Results", docs/robustness.md). A new model takes the place
# here only when it beats the current one on AutoAttack and on the per-input worst case; the old one
# stays loadable by name.
RECOMMENDED = {"mnist": "robust-mnist-conv4-pgd", "fashion-mnist": "robust-fashion-conv4-ema"}


def pretrained_dir():
    return resources.files("robustgen") / "pretrained"


def list_pretrained(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the models shipped in the package, or exported into ``folder`` (``robustgen export``)."""
    folder = Path(folder) if folder is not None else pretrained_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def read_manifest(name: str, folder: str | os.PathLike | None = None) -> dict:
    try:
        check_model_name(name)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    root = Path(folder) if folder is not None else Path(str(pretrained_dir()))
    path = root / f"{name}.json"
    if not path.is_file():
        raise CheckpointError(f"no pretrained model named {name!r}; shipped: {', '.join(list_pretrained()) or 'none'}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a robustgen pretrained-model manifest")
    return manifest


def load_pretrained(name: str, device: str | torch.device = "cpu", folder: str | os.PathLike | None = None) -> StyleMemoryNet:
    """Load a shipped model by name, after checking its weights' SHA-256 against the manifest."""
    root = Path(folder) if folder is not None else Path(str(pretrained_dir()))
    manifest = read_manifest(name, root)
    recorded = manifest.get("weights")
    if not isinstance(recorded, str) or Path(recorded).name != recorded or recorded in ("", ".", ".."):
        raise CheckpointError(f"the manifest of pretrained model {name!r} names weights {recorded!r} outside its "
                              "folder; it is refused")
    weights = root / recorded
    if not weights.is_file():
        raise CheckpointError(f"the weights of pretrained model {name!r} are missing ({weights}); reinstall robustgen")
    digest = sha256_file(weights)
    if digest != manifest["sha256"]:
        raise CheckpointError(f"the weights of pretrained model {name!r} ({weights}) are corrupt: SHA-256 {digest} "
                              f"does not match the recorded {manifest['sha256']}; reinstall robustgen")
    model = load_pretrained_weights(manifest["model_spec"], weights)
    where = f"pretrained:{name}" if folder is None else str(root / f"{name}.json")  # a report names the file it read
    model.meta = {"dataset": manifest["dataset"], "config": manifest["config"], "epoch": manifest["epoch"],
                  "path": where, "pretrained": name, "manifest": manifest}
    return model.to(device).eval()


def measured(name: str) -> dict | None:
    """A shipped model's figures under attack from ``pretrained/measured.csv`` (AutoAttack's robust
    accuracy, the per-input worst case with a detector score, the eps-0 floor, each with its eps, N
    and the report it came from; written by ``benchmarks/record_measured.py``), or None where none
    was measured."""
    path = Path(str(pretrained_dir())) / "measured.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == name]
    return parse_row(rows[-1]) if rows else None


def describe(name: str, folder: str | os.PathLike | None = None) -> dict:
    """One shipped model in a line, from its manifest (the weights are not loaded): dataset, encoder,
    training recipe, epochs, clean test accuracy (or an autoencoder's reconstruction error), whether it
    is its dataset's recommended model, the first 12 hex digits of its weights' SHA-256, and its
    figures under attack where they were measured (``measured``)."""
    m = read_manifest(name, folder)
    cfg, spec, test = m.get("config", {}), m.get("model_spec", {}), m.get("test", {})
    adv = cfg.get("adversary", {})
    if spec.get("label_free"):
        training = "autoencoder (no labels)"
    elif adv.get("method", "none") == "none":
        training = "clean"
    elif adv["method"] == "nfgsm":  # one step from uniform noise: no step count
        training = f"nfgsm eps {adv['eps']:g}, noise {adv.get('nfgsm_noise', 2.0):g} eps"
    else:
        training = f"{adv['method']} eps {adv['eps']:g}, {adv['steps']} steps" + (
            f", beta {adv['beta']:g}" if adv["method"] == "trades" else "")
        if adv.get("awp"):
            training += f", awp {adv['awp']:g}"
    if cfg.get("train", {}).get("ema"):  # the weights are a moving average of the trained ones
        training += f", weight average {cfg['train']['ema']:g}"
    dataset = m.get("dataset", {}).get("name")
    return {"name": m["name"], "dataset": dataset, "recommended": folder is None and RECOMMENDED.get(dataset) == m["name"],
            "encoder": spec.get("encoder", "paper"),
            "training": training, "epochs": m.get("epoch"), "clean_accuracy": test.get("accuracy"),
            "recon_error": test.get("recon"), "test_n": test.get("n"), "resumed": len(m.get("resumed", [])),
            "sha256": m["sha256"][:12], "measured": measured(name) if folder is None else None}


def _last_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) for k, v in rows[-1].items()} if rows else {}


def _resume_notes(run_dir: Path) -> list[str]:
    """The run's resumes as ``config.toml`` records them (``# resumed after epoch N on DATE: what changed``):
    a run resumed with ``--epochs`` was trained on another schedule than its preset's."""
    path = run_dir / "config.toml"
    if not path.is_file():
        return []
    return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# resumed after epoch")]


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_model_name(name: str) -> str:
    """A model name is one plain file stem: letters, digits, '.', '-', '_', not starting with a dot."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ValueError(f"model name {name!r} must be letters, digits, '.', '-' or '_' (no folders, no '..')")
    return name


def export(run: str | os.PathLike, name: str, out_dir: str | os.PathLike, dtype: str = "float16") -> Path:
    """Write ``NAME.pt`` and ``NAME.json`` for the run's checkpoint into ``out_dir``; return the
    manifest path. Refuses to overwrite existing files. The weights are evaluated from a temporary
    file first, and both files appear only when everything succeeded (each by an atomic rename)."""
    from .data import load_dataset
    from .inference import evaluate

    check_model_name(name)
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    ckpt = load_checkpoint(run)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    weights, manifest_path = out / f"{name}.pt", out / f"{name}.json"
    for p in (weights, manifest_path):
        if p.exists():
            raise FileExistsError(f"{p} already exists; remove it or choose another name")
    cast = getattr(torch, dtype)
    state = {k: (v.to(cast) if v.is_floating_point() else v) for k, v in ckpt["model_state"].items()}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.pt.export"
    try:
        atomic_save(state, tmp)
        model = load_pretrained_weights(ckpt["model_spec"], tmp)
        data = ckpt["config"]["data"]
        x, y = load_dataset(data["dataset"], "test", data["data_dir"])
        with torch.no_grad():
            full = evaluate(model, x, y)
            first = evaluate(model, x[:1000], y[:1000])
        if model.label_free:  # an autoencoder has no accuracy: its reconstruction error is the figure
            test = {"n": full["n"], "recon": full["recon_pred_softmax"], "recon_first_1000": first["recon_pred_softmax"]}
        else:
            test = {"accuracy": full["accuracy"], "n": full["n"], "recon_pred_softmax": full["recon_pred_softmax"],
                    "accuracy_first_1000": first["accuracy"]}
        manifest = {
            "format": FORMAT, "version": 1, "name": name, "weights": weights.name, "dtype": dtype,
            "sha256": sha256_file(tmp), "model_spec": model.spec.to_dict(), "input_shape": list(model.input_shape),
            "normalisation": {"mean": list(model.spec.mean), "std": list(model.spec.std)},
            "config": ckpt["config"], "dataset": ckpt["dataset"], "epoch": ckpt["epoch"],
            "trained_with": f"robustgen train --config {ckpt['config']['name']}",
            "resumed": _resume_notes(Path(ckpt["path"]).parent),
            "training_metrics": _last_metrics(Path(ckpt["path"]).parent),
            "test": test,
        }
        text = json.dumps(manifest, indent=2) + "\n"
        os.replace(tmp, weights)
        tmp_manifest = out / f".{name}.json.export"
        tmp_manifest.write_text(text)
        os.replace(tmp_manifest, manifest_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        (out / f".{name}.json.export").unlink(missing_ok=True)
        if weights.exists() and not manifest_path.exists():
            weights.unlink()  # never leave weights without their manifest (it would block a re-export)
        raise
    return manifest_path


def load_pretrained_weights(spec: dict, weights: Path) -> StyleMemoryNet:
    """The model of ``spec`` with the (float16 or float32) state dict in ``weights``, as float32."""
    state = {k: v.float() for k, v in safe_load(weights).items()}
    return model_from_checkpoint({"model_spec": spec, "model_state": state, "path": str(weights)})


def exported_name(path: Path) -> str | None:
    """The model name when ``path`` is an exported model (``robustgen export``'s ``NAME.json`` manifest, or
    the ``NAME.pt`` weights beside it), else None: such a file loads like a shipped model, SHA-256 checked."""
    if path.suffix not in (".json", ".pt") or not path.with_suffix(".json").is_file():
        return None
    try:
        record = read_manifest(path.stem, path.parent)  # readable, and a robustgen export manifest
    except CheckpointError:
        return None
    return path.stem if path.suffix == ".json" or record.get("weights") == path.name else None


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> StyleMemoryNet:
    """Rebuild a trained :class:`StyleMemoryNet` (eval mode) from a shipped model's name
    (``"fast-mnist"``, ``"robust-mnist"``; see ``robustgen.pretrained``), a run folder, a
    checkpoint file, or a model exported anywhere (its ``NAME.json`` manifest or ``NAME.pt`` weights).
    An existing path wins over a shipped name.

    ``model.meta`` holds the dataset record (name, class names), the training config and epoch.
    """
    p = Path(name_or_path).expanduser()
    if not p.exists():
        name = str(name_or_path)
        if name.startswith("pretrained:"):
            name = name[len("pretrained:"):]
        if name in list_pretrained():
            return load_pretrained(name, device)
        raise CheckpointError(f"{name_or_path} is neither a shipped model ({', '.join(list_pretrained()) or 'none'}) "
                              "nor a run folder or checkpoint file")
    if p.is_file() and (name := exported_name(p)) is not None:
        return load_pretrained(name, device, folder=p.parent)
    return model_from_checkpoint(load_checkpoint(p), device)
