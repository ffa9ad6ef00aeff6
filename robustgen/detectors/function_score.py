"""Any detector: a score given as a plain function of the images, ``fn(x) -> (N,)``, higher = more
suspicious, fitted and thresholded like every other score (``Detector.from_function``).

The attacks that know the detector follow the function's gradient with respect to the input. A
function with no usable gradient (rounding, filtering, JPEG inside) may bring a differentiable
``surrogate`` with the same signature (BPDA, Athalye et al. 2018): attacks then follow the
surrogate's gradient, while success is always judged by the real function at the threshold.

Every call is checked: a tensor of shape (N,), finite. A function that raises, returns another shape
or NaN is named with the problem in one line.
"""

from __future__ import annotations

from typing import Callable

import torch

from .scores import Score

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


class FunctionScoreError(ValueError):
    """A user's score function failed or returned something that is not one score per image."""


def _call(fn: ScoreFn, x: torch.Tensor, name: str) -> torch.Tensor:
    try:
        s = fn(x)
    except FunctionScoreError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's function: its failure is reported in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise FunctionScoreError(f"score {name!r} failed on {x.shape[0]} images: {type(e).__name__}: {first}") from None
    if not isinstance(s, torch.Tensor):
        raise FunctionScoreError(f"score {name!r} must return a torch tensor of shape ({x.shape[0]},), "
                                 f"got {type(s).__name__}")
    if s.dim() == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape != (x.shape[0],):
        raise FunctionScoreError(f"score {name!r} must return one score per image, shape ({x.shape[0]},); "
                                 f"got {tuple(s.shape)}")
    if not torch.isfinite(s).all():
        bad = int((~torch.isfinite(s)).sum())
        raise FunctionScoreError(f"score {name!r} returned NaN or infinite values for {bad} of {x.shape[0]} images")
    return s.float()


class FunctionScore(Score):
    """A score from ``fn(x) -> (N,)``; ``surrogate`` (same signature, differentiable) for the attacks'
    gradient where ``fn`` has none. The logits come from the classifier itself."""

    def __init__(self, fn: ScoreFn, name: str, surrogate: ScoreFn | None = None):
        if not callable(fn):
            raise FunctionScoreError(f"a score function must be callable, got {type(fn).__name__}")
        if surrogate is not None and not callable(surrogate):
            raise FunctionScoreError(f"surrogate must be callable, got {type(surrogate).__name__}")
        if not isinstance(name, str) or not name.strip() or any(c in name for c in ",:/ "):
            raise FunctionScoreError(f"a score needs a plain name (no spaces, ',', ':' or '/'), got {name!r}")
        self.fn, self.surrogate, self.name = fn, surrogate, name

    def evaluate_real(self, model, x):
        """The real score and the logits, no surrogate (what the gradient check looks at)."""
        return _call(self.fn, x, self.name), model(x)

    def evaluate(self, model, x):
        logits = model(x)
        real = _call(self.fn, x, self.name)
        if self.surrogate is None or not torch.is_grad_enabled() or not x.requires_grad:
            return real, logits
        # BPDA: the value of the real score, the gradient of the surrogate
        sur = _call(self.surrogate, x, f"{self.name} (surrogate)")
        return real + (sur - sur.detach()), logits  # exactly the real value (sur - sur is 0), the surrogate's gradient
