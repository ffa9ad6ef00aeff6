"""Attacks: one per file (torchattacks' layout), the registry here.

All attacks work in [0, 1] pixel space with an L-infinity budget ``eps`` and return images of the
input's shape. An *oblivious* attack knows only the classifier (``model(x)`` -> logits); a
*detector-aware* (adaptive) attack also knows a fitted detector (its score and threshold) and is
run once per detector score.

    attack = make_attack("pgd", model, eps=0.3)               # PGD-40, step 0.01, random start
    x_adv = run_attack(attack, x, y, batch_size=500)          # batched, on the model's device, checked
    attack = make_attack("orthogonal-pgd", model, eps=0.3, detector=det)
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch

from . import (
    adaptive_pgd,
    apgd,
    autoattack,
    bim,
    fgsm,
    guarded_apgd,
    guarded_square,
    orthogonal_pgd,
    pgd,
    selective_pgd,
    square,
)
from .base import (
    Attack,
    AttackCheckError,
    bfloat16_passes,
    check_adversarial,
    check_clean,
    parse_eps,
    parse_eps_list,
)

# name -> (module with build(model, eps, **options), detector-aware?, one-line description)
REGISTRY = {
    "fgsm": (fgsm, False, "FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps"),
    "bim": (bim, False, "BIM (Kurakin et al. 2017): iterative FGSM, no random start (default 40 x 0.01)"),
    "pgd": (pgd, False, "PGD (Madry et al. 2018): random start, projected signed steps (default 40 x 0.01)"),
    "apgd": (apgd, False, "APGD-CE then APGD-DLR (Croce & Hein 2020), 100 iterations each"),
    "autoattack": (autoattack, False, "AutoAttack at its reference budget: APGD-CE, APGD-T x 9, FAB-T x 9 (100 "
                                      "iterations), Square 5,000 queries"),
    "square": (square, False, "Square (Andriushchenko et al. 2020): gradient-free, 5,000 queries; the "
                              "gradient-masking check"),
    "adaptive-pgd": (adaptive_pgd, True, "margin loss + weighted detector hinge, weight binary-searched per input"),
    "selective-pgd": (selective_pgd, True, "Bryniarski et al. 2022: classifier gradient until misclassified, then "
                                           "detector gradient; untargeted and at every wrong class"),
    "orthogonal-pgd": (orthogonal_pgd, True, "Bryniarski et al. 2022: selective PGD with each gradient made "
                                             "orthogonal to the other"),
    "guarded-apgd": (guarded_apgd, True, "APGD-CE and APGD-DLR on the combined model (classifier + reject "
                                         "logit, Carlini & Wagner 2017)"),
    "guarded-square": (guarded_square, True, "Square's random search (Andriushchenko et al. 2020) on 'misclassified "
                                             "and not flagged', gradient-free: for scores with no usable gradient"),
}
ATTACKS = {name: desc for name, (_, _, desc) in REGISTRY.items()}
# the set a defence is judged by: every attack but FGSM and BIM (which the others subsume)
# (guarded-square is not in it yet: on a quantised confidence score it falls far short of a straight-through
# attack, docs/your-own-detector.md)
STRONG = ["pgd", "apgd", "autoattack", "square", "adaptive-pgd", "selective-pgd", "orthogonal-pgd", "guarded-apgd"]
GRADIENT_FREE = {"square", "guarded-square"}
PRECISIONS = ("float32", "bfloat16")
DEFAULT_STEPS = pgd.DEFAULT_STEPS
DEFAULT_STEP_SIZE = pgd.DEFAULT_STEP_SIZE


def is_adaptive(name: str) -> bool:
    """Whether the attack knows the detector (and so runs once per score)."""
    return _entry(name)[1]


def default_budget(name: str) -> tuple[str, int]:
    """(option, value) of an iterative attack's default budget: ("steps", 40) for pgd,
    ("queries", 5000) for square. FGSM has none (one step) and raises ValueError."""
    module = _entry(name)[0]
    key = "queries" if name in GRADIENT_FREE else "steps"
    value = getattr(module, "DEFAULT_QUERIES" if key == "queries" else "DEFAULT_STEPS", None)
    if value is None:
        raise ValueError(f"{name} is not iterative: it has no step budget to change")
    return key, value


def unbounded_step_size(name: str, steps: int | None = None, step_size: float | None = None) -> float | None:
    """The step a fixed-step attack takes in the eps-1 sanity check: Madry et al.'s 2.5 * eps / steps
    at eps 1.0, so that its steps can cross the whole [0, 1] range (40 steps of 0.01 reach only 0.4
    from an attack's start), never smaller than the run's own. None for attacks that size their own
    steps (APGD, AutoAttack) or take none (FGSM's one step of eps, Square)."""
    default = getattr(_entry(name)[0], "DEFAULT_STEP_SIZE", None)
    if default is None:
        return None
    # training's inner PGD uses the same rule (training/adversary.py; the layers keep the two apart)
    return max(step_size or default, 2.5 / (steps or default_budget(name)[1]))


def check_precision(precision: str) -> None:
    """A ValueError naming ``precision`` unless it is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def _entry(name: str):
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; use one of {', '.join(REGISTRY)}") from None


def make_attack(name: str, model: torch.nn.Module, eps: float | str, *, steps: int | None = None,
                step_size: float | None = None, random_start: bool = True, detector=None,
                search_steps: int = 5, targets: str = "all", queries: int | None = None,
                precision: str = "float32") -> Attack:
    """Build an attack by name (see ``ATTACKS``). ``steps``/``step_size`` left as None take each
    attack's own default (PGD-40 step 0.01; APGD and AutoAttack 100 iterations); ``queries`` is
    the gradient-free Square attack's budget (default 5,000).
    Detector-aware attacks need a fitted ``detector``; ``targets`` ("all" or "untargeted") picks
    whether selective/orthogonal PGD also run targeted at every wrong class. ``precision="bfloat16"``
    computes the attack's passes under bfloat16 autocast (faster on bfloat16 hardware), except a
    gradient-free attack's (``GRADIENT_FREE``, and AutoAttack's Square), whose accept test needs float32;
    what it found is judged in float32 by the caller either way."""
    module, adaptive, _ = _entry(name)
    eps = parse_eps(eps)
    for label, value in (("steps", steps), ("queries", queries), ("search_steps", search_steps)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{label} must be a whole number of at least 1, got {value!r}")
    if step_size is not None and not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")  # NaN fails `<= 0` tests
    if targets not in ("all", "untargeted"):
        raise ValueError(f"targets must be 'all' or 'untargeted', got {targets!r}")
    check_precision(precision)
    if adaptive and (detector is None or detector.threshold is None):
        raise ValueError(f"{name} attacks a detector: pass a fitted Detector")
    attack = module.build(model, eps, steps=steps, step_size=step_size, random_start=random_start, detector=detector,
                          search_steps=search_steps, targets=targets, queries=queries)
    if precision != "float32" and name in GRADIENT_FREE:
        # a random search keeps a candidate when the margin falls by any amount, often below bfloat16's
        # resolution: Square with bfloat16 passes left 83.6 % of Fashion-MNIST robust where float32 left
        # 77.9 % (docs/robustness.md). Its passes stay float32.
        attack.budget += ", float32 passes (gradient-free: not bfloat16)"
    elif precision != "float32":
        attack.precision = precision
        attack.budget += f", {precision} passes"
        if getattr(module, "FLOAT32_PARTS", ""):  # AutoAttack's Square, for the same reason
            attack.budget += f" ({module.FLOAT32_PARTS} float32)"
    return attack


def run_attack(attack: Attack, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
               on_batch: Callable[[int], None] | None = None, seed: int | None = None,
               start: torch.Tensor | None = None) -> torch.Tensor:
    """Attack (x, y) in batches on the model's device; check every batch; return x_adv on x's device.

    ``start`` (like x; rows of NaN where there is none) gives an attack that ``starts`` a point to
    begin from per input (an earlier attack's example); other attacks ignore it.

    With ``seed``, each batch's randomness (random starts, Square's proposals) is seeded by
    (seed, global index of its first input), so the result does not depend on what ran before. Under
    torchrun the batches are shared out over the processes and gathered back (``robustgen.distributed``):
    with a seed, the result is the same as in one process. Bad inputs (not (N, C, H, W) floats in
    [0, 1], NaN, labels of another length, ``batch_size`` < 1) are a ValueError naming them.
    """
    from ..distributed import batch_seed, gather_batches, my_batches, world

    check_clean(x, y, batch_size)
    device = attack_device(attack)
    n = x.shape[0]
    if not n:
        return x.clone()
    mine = {}
    for i in my_batches(n, batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        if seed is not None:
            torch.manual_seed(batch_seed(seed, i))
        sb = start[i:i + batch_size].to(device) if start is not None else None
        with bfloat16_passes(device.type) if attack.precision == "bfloat16" else contextlib.nullcontext():
            x_adv = attack(xb, yb, sb).detach()
        x_adv = x_adv.to(xb.dtype)
        check_adversarial(xb, x_adv, attack.eps, attack.name)
        mine[i] = x_adv
        if on_batch:
            on_batch(xb.shape[0] * world()[1])  # progress of all processes, assuming equal speed
    return gather_batches(mine, n, batch_size).to(x.device)


def attack_device(attack: Attack) -> torch.device:
    if attack.model is None:
        return torch.device("cpu")
    return next(attack.model.parameters()).device


__all__ = ["ATTACKS", "Attack", "AttackCheckError", "GRADIENT_FREE", "PRECISIONS", "REGISTRY", "STRONG",
           "check_adversarial", "check_precision", "default_budget", "is_adaptive", "make_attack", "parse_eps", "parse_eps_list",
           "run_attack"]
