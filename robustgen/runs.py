"""Run folders, devices, seeds and provenance.

Each training run gets a fresh folder ``<runs_dir>/<YYYYmmdd-HHMMSS>-<name>/`` that is never
reused: it holds ``config.toml``, ``environment.json``, ``metrics.csv`` and ``checkpoint.pt``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from .checkpoint import CHECKPOINT_NAME


class RunError(RuntimeError):
    """A run folder cannot be created or found."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but this machine has no usable CUDA device; use --device cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware, by torch's own probes: a CPU with
    AVX512-BF16 or AMX. CUDA answers False: bfloat16 training has not been measured on a GPU here."""
    if device.type != "cpu":
        return False
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_amx_tile_supported",
                                                                         "_is_avx512_bf16_supported"))


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> ``bfloat16`` where the device has bfloat16 matrix units (where it measured 1.3-2x faster
    with the same accuracy, docs/robustness.md), else ``float32`` (where bfloat16 is emulated and ~19x slower)."""
    if name != "auto":
        return name
    return "bfloat16" if native_bfloat16(device) else "float32"


def seed_everything(seed: int) -> None:
    """Seed torch's CPU and CUDA generators (the only RNGs the toolkit uses)."""
    torch.manual_seed(seed)


def create_run_dir(runs_dir: str | os.PathLike, name: str) -> Path:
    """Make a new, empty run folder; an existing folder is never reused."""
    root = Path(runs_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "run"
    for i in range(1000):
        path = root / (f"{stamp}-{safe}" if i == 0 else f"{stamp}-{safe}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not create a new run folder under {root}")


def latest_run(runs_dir: str | os.PathLike = "runs") -> Path:
    """The run folder whose checkpoint was written last (the most recently trained run)."""
    root = Path(runs_dir).expanduser()
    runs = [p for p in root.glob("*") if (p / CHECKPOINT_NAME).is_file()] if root.is_dir() else []
    runs.sort(key=lambda p: ((p / CHECKPOINT_NAME).stat().st_mtime_ns, p.name))
    if not runs:
        raise RunError(f"no trained run found under {root.resolve()}; run `robustgen train` first "
                       "or pass --checkpoint RUN")
    return runs[-1]


def _git_commit() -> dict:
    src = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=5)
        return {"git_commit": sha.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def environment_record(device: torch.device) -> dict:
    """Versions, device and source revision: enough to tell how a result was produced."""
    versions = {}
    for pkg in ("robustgen", "torch", "torchvision", "torchattacks", "numpy", "scikit-learn"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    record = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bfloat16": native_bfloat16(device),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record.update(_git_commit())
    return record


def write_json(path: str | os.PathLike, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


class MetricsLog:
    """``metrics.csv``: one row per epoch, appended (so a resumed run continues the same file)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, row: dict) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def restore(self, row: dict | None) -> None:
        """On resume: append the checkpoint's own row if the log lacks it (a crash after the checkpoint
        was written and before its row was appended). Rows already written are never rewritten."""
        if row is None:  # checkpoints written before they carried their row
            return
        epochs = []
        if self.path.exists():
            if not self.path.read_bytes().endswith(b"\n"):  # a row torn by the crash: end it, keep it
                with self.path.open("a") as f:
                    f.write("\n")
            with self.path.open(newline="") as f:
                epochs = [r["epoch"] for r in csv.DictReader(f)]
        if str(row["epoch"]) not in epochs:
            self.append(row)
