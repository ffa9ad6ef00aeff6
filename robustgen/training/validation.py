"""Range checks of a training :class:`~robustgen.training.config.Config`, and the error they raise.

``validate`` is called by ``load_config`` after every preset and override, and by ``train_run`` on a resumed
run's stored config; the first value out of range raises :class:`ConfigError` with a one-line message naming
its key.
"""

from __future__ import annotations

from ..data import check_name, list_datasets
from ..model import ENCODERS

STABILITY_MEASURES = ("style", "relative", "recon", "contrast")


class ConfigError(ValueError):
    """A preset, TOML file or override is not valid."""


def _dataset_ok(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def validate(cfg) -> None:
    """Raise :class:`ConfigError` naming the first key of ``cfg`` (a ``Config``; not imported here: config.py
    imports this module) whose value is out of range."""
    t = cfg.train
    checks = [
        (t.epochs >= 1, f"train.epochs must be at least 1, got {t.epochs}"),
        (t.batch_size >= 1, f"train.batch_size must be at least 1, got {t.batch_size}"),
        (0 <= t.seed <= 2**32 - 1, f"train.seed must be a whole number in [0, {2**32 - 1}], got {t.seed}"),
        (t.lr > 0, "train.lr must be positive"),
        (t.lr_schedule in ("constant", "cosine", "onecycle"), "train.lr_schedule must be constant, cosine or onecycle"),
        (t.precision in ("auto", "float32", "bfloat16"), "train.precision must be auto, float32 or bfloat16"),
        (0 <= t.warmup_frac < 1, "train.warmup_frac must lie in [0, 1)"),
        (t.alpha >= 0, f"train.alpha must be non-negative, got {t.alpha}"),
        (t.noise_std >= 0, f"train.noise_std must be non-negative, got {t.noise_std}"),
        (t.ema == 0 or 0 < t.ema < 1, f"train.ema must be 0 (off) or lie in (0, 1), got {t.ema}"),
        (0 <= t.shift <= 8, "train.shift must lie in 0..8 pixels"),
        (len(cfg.model.channels) == 2 and len(cfg.model.hidden) == 2,
         "model.channels and model.hidden must each have two entries (the paper's two conv and two FC layers)"),
        (all(c >= 1 for c in cfg.model.channels), f"model.channels entries must be at least 1, got {cfg.model.channels}"),
        (all(h >= 1 for h in cfg.model.hidden), f"model.hidden entries must be at least 1, got {cfg.model.hidden}"),
        (cfg.model.style_dim >= 1, "model.style_dim must be at least 1"),
        (cfg.model.kernel_size >= 1 and cfg.model.kernel_size % 2 == 1,
         f"model.kernel_size must be a positive odd number, got {cfg.model.kernel_size}"),
        (cfg.model.encoder in ENCODERS, f"model.encoder must be one of {', '.join(ENCODERS)}, got {cfg.model.encoder!r}"),
        (t.weight_decay >= 0, "train.weight_decay must be non-negative"),
        (t.eval_batch_size >= 1, "train.eval_batch_size must be at least 1"),
        (cfg.data.limit_train is None or cfg.data.limit_train >= 1, "data.limit_train must be at least 1"),
        (cfg.data.val_size is None or cfg.data.val_size >= 1, "data.val_size must be at least 1 (or none: the default)"),
        (_dataset_ok(cfg.data.dataset), f"data.dataset {cfg.data.dataset!r} is not a dataset; use one of "
                                        f"{', '.join(list_datasets())}"),
        (bool(cfg.name.strip()) and bool(cfg.runs_dir.strip()), "name and runs_dir must not be empty"),
        (not cfg.model.label_free or (cfg.adversary.method == "none" and not cfg.style.active
                                      and not cfg.model.separate_style),
         "model.label_free (an autoencoder) takes no adversary, no [style] terms and no separate style branch"),
    ]
    a = cfg.adversary
    checks += [
        (a.method in ("none", "pgd", "trades", "nfgsm"), "adversary.method must be none, pgd, trades or nfgsm"),
        (a.nfgsm_noise >= 0, "adversary.nfgsm_noise must be non-negative"),
        (0 < a.eps <= 1, "adversary.eps must lie in (0, 1] (pixel units)"),
        (a.steps >= 1, "adversary.steps must be at least 1"),
        (a.step_size >= 0, "adversary.step_size must be non-negative (0 = 2.5 * eps / steps)"),
        (0 <= a.warmup_epochs and a.ramp_epochs >= 0, "adversary.warmup_epochs and ramp_epochs must be non-negative"),
        (a.beta >= 0, "adversary.beta must be non-negative"),
        (0 <= a.clean_weight <= 1, "adversary.clean_weight must lie in [0, 1]"),
        (a.recon_target in ("clean", "attacked"), "adversary.recon_target must be clean or attacked"),
        (0 <= a.awp < 1, f"adversary.awp must lie in [0, 1) (0 = off), got {a.awp}"),
        (a.awp == 0 or a.method != "none", "adversary.awp perturbs the weights of adversarial training: "
                                           "set adversary.method too"),
        (cfg.style.consistency >= 0 and cfg.style.critic >= 0, "style.consistency and style.critic must be non-negative"),
        (cfg.style.critic_hidden >= 0, "style.critic_hidden must be non-negative (0 = linear critic)"),
        (cfg.style.noise >= 0, "style.noise must be non-negative"),
        (0 <= cfg.style.dropout < 1, "style.dropout must lie in [0, 1)"),
        (cfg.style.stability >= 0, "style.stability must be non-negative"),
        (cfg.style.sharpen >= 0, "style.sharpen must be non-negative"),
        (0 < cfg.style.stability_eps <= 1, "style.stability_eps must lie in (0, 1]"),
        (cfg.style.stability_measure in STABILITY_MEASURES,
         f"style.stability_measure must be one of {', '.join(STABILITY_MEASURES)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
