"""Typed configuration: dataclasses, TOML presets and ``key=value`` overrides.

A preset is a TOML file with tables ``[data]``, ``[model]``, ``[train]``, ``[adversary]`` and ``[style]`` (plus
top-level ``name``); anything it leaves out keeps the dataclass default. Presets ship in ``configs/`` and are
found by name in robustgen/configs/ (``list_presets()``: ``smoke``, ``fast-mnist``, ``style-mnist``, ...) or given as a path.
Overrides use dotted keys with TOML values: ``train.lr=1e-3``, ``data.dataset="idx:/data"``
(quotes optional for strings), ``data.limit_train=none``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .validation import ConfigError, validate


@dataclass
class DataConfig:
    dataset: str = "mnist"  # mnist | fashion-mnist | emnist-letters | cifar10 | svhn | colored-mnist | idx:PATH | folder:PATH
    data_dir: str | None = None  # folder for downloaded datasets; default $ROBUSTGEN_DATA or ./data
    val_size: int | None = None  # training images held out for validation (never trained on); none = 5000, or 10 %
    #                              of a training part under 25,000 images
    limit_train: int | None = None  # use only the first N training images (quick runs)
    download: bool = False  # let torchvision download a dataset whose files are missing


@dataclass
class ModelConfig:
    style_dim: int = 16  # logistic style-memory units (paper: 16)
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv filters (paper: 32, 64)
    kernel_size: int = 5  # conv kernel (paper: 5x5, stride 2)
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # FC sizes (paper: 256, 128)
    separate_style: bool = False  # compute the style on its own encoder branch (not the paper's shared top layer)
    encoder: str = "paper"  # paper (2 strided convs) | conv4 (two convs at each of the two resolutions)
    label_free: bool = False  # train a class-agnostic autoencoder (the magnet scores' network): no label, no CE


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128  # not given in the paper; 128 is the reference for speed numbers
    lr: float = 1e-3  # Adam peak learning rate (paper: 1e-5)
    lr_schedule: str = "constant"  # constant | cosine | onecycle (linear warm-up, cosine decay)
    warmup_frac: float = 0.0  # share of all steps spent warming up (onecycle only)
    weight_decay: float = 0.0  # AdamW-style decoupled decay; 0 = plain Adam as in the paper
    alpha: float = 0.05  # weight of the reconstruction loss (paper: 0.05)
    noise_std: float = 0.1  # std of additive Gaussian input noise (paper: unspecified)
    shift: int = 0  # random translation of up to this many pixels (0 = off; not in the paper)
    flip: bool = False  # random left-right mirroring (for clothing and photos; never for digits or letters)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    cuda_graph: bool = True  # capture the training step as a CUDA graph on GPUs
    eval_batch_size: int = 1000
    precision: str = "auto"  # auto (bfloat16 on bf16 hardware) | float32 | bfloat16 (autocast, float32 weights)
    init: str = ""  # fine-tune: start from these weights (shipped name, run, checkpoint, export); "" = random
    ema: float = 0.0  # weight averaging: decay per step of the saved weights' moving average (0 = off; 0.999)


@dataclass
class AdversaryConfig:
    """Adversarial training: each training batch is attacked by the network's own inner attack."""

    method: str = "none"  # none | pgd (Madry et al. 2018) | trades (Zhang et al. 2019) | nfgsm (de Jorge et al. 2022)
    eps: float = 0.3  # L-inf budget in [0, 1] pixel units
    steps: int = 5  # inner attack iterations
    step_size: float = 0.0  # per-step size in pixel units; 0 = 2.5 * eps / steps (Madry's rule), eps for nfgsm
    nfgsm_noise: float = 2.0  # nfgsm: the start is uniform noise of this many eps (no projection back to the ball)
    random_start: bool = True  # start each inner attack at a uniform point of the eps-ball
    warmup_epochs: int = 0  # clean epochs before any attack
    ramp_epochs: float = 2.0  # then eps grows linearly from 0 to eps over this many epochs
    beta: float = 6.0  # TRADES weight of KL(f(x) || f(x_adv)) (the TRADES paper's MNIST value)
    clean_weight: float = 0.0  # pgd only: share of the cross-entropy taken on clean inputs (0 = Madry)
    recon_target: str = "clean"  # what the decoder rebuilds from an attacked input: clean | attacked
    awp: float = 0.0  # adversarial weight perturbation (Wu et al. 2020): relative size per layer (0 = off; 5e-3)


@dataclass
class StyleConfig:
    """Options that make the label carry the class and the style only how it was drawn (all off by default)."""

    consistency: float = 0.0  # weight of CE(classifier(decode(onehot(c), style)), c) for a random wrong label c
    critic: float = 0.0  # weight of a class critic on the style trained through gradient reversal
    critic_hidden: int = 64  # the critic's hidden width (0 = a linear critic, like the probe)
    noise: float = 0.0  # std of Gaussian noise added to the style before decoding (training only)
    dropout: float = 0.0  # dropout probability on the style units before decoding (training only)
    stability: float = 0.0  # weight of a penalty on what a one-step (FGSM) perturbation of the input does to the style
    stability_eps: float = 0.1  # L-inf size of that perturbation in [0, 1] pixel units
    stability_measure: str = "style"  # style: squared style change | relative: the same over the batch's style
    #                                   variance | recon: error of the true label decoded with the perturbed style
    teacher_label: bool = False  # train the reconstruction from onehot(true label) instead of the predicted softmax
    sharpen: float = 0.0  # weight of the reconstruction error from a mix lam*onehot(y) + (1-lam)*onehot(c), lam in [0.5, 1)

    @property
    def active(self) -> bool:
        return bool(self.consistency or self.critic or self.noise or self.dropout or self.stability
                    or self.teacher_label or self.sharpen)


@dataclass
class Config:
    name: str = "run"
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)
    style: StyleConfig = field(default_factory=StyleConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset_dir():
    return resources.files("robustgen") / "configs"


def list_presets() -> list[str]:
    return sorted(p.name[:-5] for p in preset_dir().iterdir() if p.name.endswith(".toml"))


def _read_toml(source: str) -> dict:
    path = Path(source).expanduser()
    if source.endswith(".toml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text = path.read_text()
    else:
        preset = preset_dir() / f"{source}.toml"
        if not preset.is_file():
            raise ConfigError(f"unknown preset {source!r}; use one of {', '.join(list_presets())} or a .toml path")
        text = preset.read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML ({e})") from None


def _coerce(value, tp, key: str):
    """Check ``value`` against the annotation ``tp`` (int, float, str, bool, list[int], X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, inner, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML spells inf and nan; neither is ever a sensible setting
                raise ConfigError(f"{key} must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be of type {getattr(tp, '__name__', tp)}, got {value!r}")


def _apply(obj, table: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in table.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(f"{prefix}{k}" for k in hints)
            raise ConfigError(f"unknown config key {full!r}; known keys: {known}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} must be a table")
            _apply(current, value, prefix=f"{full}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], full))


def parse_override(item: str) -> tuple[list[str], object]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001). Bare words are taken as strings."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.key=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # unquoted string such as idx:/data/folder
    return key.strip().split("."), value


def load_config(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a :class:`Config` from defaults, a preset name or TOML path, then overrides."""
    cfg = Config()
    if source:
        _apply(cfg, _read_toml(source))
    for item in overrides:
        parts, value = parse_override(item)
        table: dict = {}
        cursor = table
        for p in parts[:-1]:
            cursor = cursor.setdefault(p, {})
        cursor[parts[-1]] = value
        _apply(cfg, table)
    validate(cfg)
    return cfg


def config_from_dict(d: dict) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (as stored in checkpoints)."""
    cfg = Config()
    _apply(cfg, {k: v for k, v in d.items()})
    return cfg


def toml_value(v) -> str:
    """One value as TOML: booleans, quoted and escaped strings, lists, numbers."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(cfg: Config) -> str:
    """Serialise a Config as TOML (None values are left out, so defaults apply on reload)."""
    d = cfg.to_dict()
    lines = [f"{k} = {toml_value(v)}" for k, v in d.items() if not isinstance(v, dict) and v is not None]
    for section, table in d.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"
