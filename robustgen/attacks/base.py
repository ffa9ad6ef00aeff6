"""What every attack shares: the ``Attack`` record, eps parsing, the output checks, projection onto
the L-inf ball, the margin loss, and the per-input cascade that keeps each input's first
misclassifying example (AutoAttack's way of combining attacks)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

import torch

from ..data.base import check_pixels


class AttackCheckError(RuntimeError):
    """An attack produced images outside the eps-ball, outside [0, 1], or with NaN."""


@dataclass
class Attack:
    """A configured attack: ``fn(x, y) -> x_adv`` on one batch, plus what it is.

    ``adaptive`` attacks know the detector they were built against (its score and threshold);
    ``steps`` is the gradient (or query) budget per input, for the report. An attack that ``starts``
    takes ``fn(x, y, start)``: per input a point of the ball to begin from (an earlier attack's
    example), a row of NaN where there is none (see :func:`start_or`).
    """

    name: str
    eps: float
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    adaptive: bool
    steps: int
    model: torch.nn.Module | None = None  # where the attack runs (its device); None: the CPU
    budget: str = ""  # the per-input budget in words, for reports ("40 steps, step 0.01, random start")
    starts: bool = False  # fn takes a third argument: where to begin, per input
    precision: str = "float32"  # bfloat16: its forward and backward passes under bfloat16 autocast (run_attack)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        if start is not None and self.starts:
            return self.fn(x, y, start)
        return self.fn(x, y)


MAX_EPS_RANGE = 100  # budgets one start:stop:step range may give


def parse_eps(value: str | float) -> float:
    """``0.3``, ``"0.3"`` or ``"8/255"`` -> float in (0, 1]."""
    try:
        eps = float(Fraction(str(value).strip())) if not isinstance(value, float) else value
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"cannot read eps {value!r}; give a number in [0, 1] pixel units like 0.3 or 8/255") from None
    if not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must lie in (0, 1] (pixel units in [0, 1]), got {value!r}")
    return eps


def parse_eps_list(text: str) -> list[float]:
    """Comma-separated budgets, each a number (``0.3``, ``8/255``) or an inclusive range
    ``start:stop:step`` (``0:0.4:0.05`` -> 0.05, 0.1, ..., 0.4; eps 0 is the clean point and is left
    out); a range reaching below 0 or above 1 is refused, not trimmed. Returns sorted, de-duplicated
    floats in (0, 1]."""
    values: set[float] = set()
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if ":" not in item:
            values.add(parse_eps(item))
            continue
        parts = item.split(":")
        try:
            start, stop, step = (Fraction(p.strip()) for p in parts) if len(parts) == 3 else (None, None, None)
        except (ValueError, ZeroDivisionError):
            start = None
        if start is None or step <= 0 or stop < start:
            raise ValueError(f"cannot read eps range {item!r}; write start:stop:step with step > 0, like 0:0.4:0.05")
        if start < 0 or stop > 1:  # refused whole, never trimmed to the part inside [0, 1]
            raise ValueError(f"eps range {item!r} reaches outside [0, 1] (pixel units); start at 0 or above and stop "
                             "at 1 or below")
        if (stop - start) / step > MAX_EPS_RANGE:  # a tiny step would spin here for hours, then attack for days
            raise ValueError(f"eps range {item!r} gives more than {MAX_EPS_RANGE} budgets; use a larger step")
        k = 0
        while start + k * step <= stop:
            v = start + k * step
            if v > 0:
                values.add(parse_eps(round(float(v), 10)))
            k += 1
    if not values:
        raise ValueError(f"--eps {text!r} gives no budget in (0, 1]")
    return sorted(values)


def project(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Nearest point of the L-inf eps-ball around x that lies in [0, 1]."""
    return (x + (adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)


def random_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    return project(x + torch.empty_like(x).uniform_(-eps, eps), x, eps)


def has_start(start: torch.Tensor | None, n: int, device) -> torch.Tensor:
    """(N,) bool: which inputs were given a start (a row with no NaN)."""
    if start is None:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return ~torch.isnan(start.flatten(1)).any(dim=1)


def start_or(begin: torch.Tensor, x: torch.Tensor, eps: float, start: torch.Tensor | None) -> torch.Tensor:
    """``begin`` (the attack's own first point, e.g. a random start) where no start was given, else
    the start projected onto x's eps-ball (it may come from an attack at the same eps: a no-op)."""
    given = has_start(start, x.shape[0], x.device)
    if not given.any():
        return begin
    return torch.where(given[:, None, None, None], project(start.nan_to_num(0.0), x, eps), begin)


def margin(logits: torch.Tensor, y: torch.Tensor, kappa: float = float("inf")) -> torch.Tensor:
    """Carlini & Wagner's margin Z_y - max_{j != y} Z_j, floored at -kappa: (N, C), (N,) -> (N,).
    Negative means misclassified."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).max(dim=1).values
    return (true - other).clamp(min=-kappa)


def cascade(attacks: Sequence[Callable], model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Run ``attacks`` in order, each only on the inputs that no earlier one misclassified; keep
    per input the first misclassifying example (AutoAttack's ensemble). Inputs never broken keep
    the last attack's output, so the result is always inside the ball."""
    adv = x.clone()
    with torch.no_grad():
        robust = model(x).argmax(dim=1) == y
    for atk in attacks:
        idx = robust.nonzero()[:, 0]
        if idx.numel() == 0:
            break
        out = atk(x[idx], y[idx]).detach()
        adv[idx] = out
        with torch.no_grad():
            robust[idx] = model(out).argmax(dim=1) == y[idx]
    return adv


def check_clean(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """Refuse inputs an attack would turn into a silently wrong result: ValueError naming the problem."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor (N, C, H, W) in [0, 1], got shape {tuple(x.shape)} dtype {x.dtype}")
    if y.shape != (x.shape[0],) or y.is_floating_point() or y.is_complex():
        raise ValueError(f"y must hold one integer label per image, shape ({x.shape[0]},), got shape {tuple(y.shape)} "
                         f"dtype {y.dtype}")
    if x.numel():
        check_pixels(x)


def check_adversarial(x: torch.Tensor, x_adv: torch.Tensor, eps: float, name: str = "attack") -> None:
    """Fail loudly unless x_adv has x's shape, no NaN, values in [0, 1] and |x_adv - x|_inf <= eps."""
    if x_adv.shape != x.shape:
        raise AttackCheckError(f"{name} returned shape {tuple(x_adv.shape)} for inputs of shape {tuple(x.shape)}")
    if not torch.isfinite(x_adv).all():
        raise AttackCheckError(f"{name} produced NaN or infinite pixels")
    if x_adv.min() < 0.0 or x_adv.max() > 1.0:
        raise AttackCheckError(f"{name} left the [0, 1] pixel range: [{float(x_adv.min()):.4g}, {float(x_adv.max()):.4g}]")
    dist = (x_adv - x).abs().amax()
    if dist > eps + 1e-5:
        raise AttackCheckError(f"{name} perturbation {float(dist):.6f} exceeds eps {eps:.6f}")


def seeded(atk: Callable) -> Callable:
    """A torchattacks attack that takes its randomness from the caller's RNG.

    torchattacks' APGD, APGD-T, FAB and Square call ``torch.random.manual_seed(self.seed)`` on every
    call, so left alone every run would use seed 0 whatever ``--seed`` says, and the global RNG would
    be reset behind the caller's back. Here each call draws the attack's seed from the caller's
    (seeded) generator and runs it inside ``torch.random.fork_rng``, so the caller's RNG moves on by
    that one draw only.
    """
    def call(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atk.seed = int(torch.randint(0, 2**31 - 1, (1,)))
        with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
            return atk(x, y)

    call.__wrapped__ = atk
    return call


def _as_float32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype == torch.bfloat16 else out
    if isinstance(out, (tuple, list)):
        return type(out)(_as_float32(o) for o in out)
    return out


def float32_passes(atk: Callable) -> Callable:
    """``atk`` with its passes in float32 even inside ``bfloat16_passes``: for a random search whose
    accept test needs float32 (``square.make``, alone or as AutoAttack's fourth attack)."""
    def call(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return atk(x, y)

    call.__wrapped__ = atk
    return call


@contextlib.contextmanager
def bfloat16_passes(device_type: str):
    """Run what is inside under bfloat16 autocast, but hand back whatever the outermost module call
    returns as float32: the layers compute in bfloat16, while an attack's losses, comparisons and
    torchattacks' conversions to numpy (which has no bfloat16) see float32 logits and scores."""
    depth = [0]

    def enter(module, args):
        depth[0] += 1

    def leave(module, args, out):
        depth[0] -= 1
        return _as_float32(out) if depth[0] == 0 else None

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
             torch.nn.modules.module.register_module_forward_hook(leave, always_call=True)]
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
    finally:
        for hook in hooks:
            hook.remove()
