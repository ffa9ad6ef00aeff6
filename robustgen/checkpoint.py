"""The only save/load path for models: atomic writes, ``weights_only``-safe loading, a SHA-256
sealed into every file (:mod:`robustgen.integrity`) and checked on every load.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (so
``torch.load(weights_only=True)`` accepts it) holding the weights, the optimizer state, the number
of finished epochs, the resolved config and the model spec needed to rebuild the network.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from .integrity import IntegrityError, read_sealed, seal
from .model import ModelSpec, StyleMemoryNet

FORMAT = "robustgen-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a robustgen checkpoint."""


def model_payload(model: StyleMemoryNet) -> dict:
    """Weights, spec and provenance of a model as plain, weights_only-loadable data."""
    meta = getattr(model, "meta", {}) or {}
    return {
        "model_spec": model.spec.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": meta.get("dataset"),
        "config": meta.get("config"),
        "epoch": meta.get("epoch"),
    }


def atomic_save(payload: dict, path: str | os.PathLike) -> Path:
    """torch.save, sealed with its SHA-256, to a temporary file in the same folder, fsync, then
    rename over ``path``: a crash leaves either the old file or the new one, never a torn one, and
    a file changed afterwards is refused by :func:`safe_load`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = seal(buffer.getvalue())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file gets what a plain open() would give
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, *, model: StyleMemoryNet, epoch: int, config: dict,
                    dataset: dict, optimizer: torch.optim.Optimizer | None = None,
                    extra: dict | None = None) -> Path:
    """Write a training checkpoint atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        **model_payload(model),
        "epoch": int(epoch),
        "config": config,
        "dataset": dataset,
        "optimizer_state": _portable_optimizer_state(optimizer) if optimizer is not None else None,
        "extra": extra or {},
    }
    return atomic_save(payload, path)


def _portable_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """Optimizer state on the CPU with plain-float hyper-parameters (CUDA-graph runs use tensor lr)."""
    sd = optimizer.state_dict()
    groups = [{k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in g.items()} for g in sd["param_groups"]]
    state = {i: {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
             for i, s in sd["state"].items()}
    return {"state": state, "param_groups": groups}


def resolve_checkpoint(path_or_run: str | os.PathLike) -> Path:
    """A checkpoint file, or the checkpoint inside a run folder."""
    p = Path(path_or_run).expanduser()
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}; pass a run folder made by `robustgen train` or a checkpoint.pt file")
    return p


def safe_load(path: str | os.PathLike):
    """torch.load with ``weights_only=True`` on the CPU, after checking the file's SHA-256 seal
    (files written before robustgen sealed them load unchecked); a clear one-line error for a bad file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no file at {p}")
    try:
        data, _ = read_sealed(p)
    except IntegrityError as e:
        raise CheckpointError(str(e)) from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise CheckpointError(f"cannot read {p}: {type(e).__name__}: {e}. The file is corrupt or "
                              "not a robustgen checkpoint") from None


def load_checkpoint(path_or_run: str | os.PathLike) -> dict:
    """Load and check a checkpoint dict (on the CPU, with ``weights_only=True``)."""
    p = resolve_checkpoint(path_or_run)
    ckpt = safe_load(p)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a robustgen checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{p} was written by a newer robustgen (format {ckpt['version']}); upgrade robustgen")
    ckpt["path"] = str(p)
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> StyleMemoryNet:
    """Rebuild the model a checkpoint-like dict (``model_spec``, ``model_state``) describes."""
    where = ckpt.get("path", "checkpoint")
    for key in ("model_spec", "model_state"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{where}: no {key} in the file; it is damaged or not a robustgen checkpoint")
    try:
        model = StyleMemoryNet(ModelSpec.from_dict(ckpt["model_spec"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: the stored model spec is not valid ({e})") from None
    state = dict(ckpt["model_state"])
    for name in ("pixel_mean", "pixel_std"):  # written as scalars before images could have several channels
        buf = getattr(model, name)
        if name in state and state[name].numel() == buf.numel():
            state[name] = state[name].reshape(buf.shape)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt.get('path', 'checkpoint')}: weights do not match the stored model spec ({e})") from None
    model.meta = {"dataset": ckpt.get("dataset"), "config": ckpt.get("config"), "epoch": ckpt.get("epoch"),
                  "path": ckpt.get("path")}
    return model.to(device).eval()
