"""What a detector is given, checked: images (tensors or numpy arrays in the layouts ART users pass,
float in [0, 1]) and the threshold at a false-positive rate of clean scores."""

from __future__ import annotations

import numpy as np
import torch

from ..data.base import check_pixels
from ..data.inputs import layout


def to_model_layout(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, C, H, W) as is, (N, H, W, C) channels-last (as ART users pass numpy) permuted, (N, H, W)
    for a one-channel model given a channel axis; any other shape is a ValueError naming both."""
    kind = layout(x.shape, shape)
    return x if kind == "nchw" else x.permute(0, 3, 1, 2) if kind == "nhwc" else x.unsqueeze(1)


def as_images(x, model, device: torch.device | None = None) -> torch.Tensor:
    """Validate user input and return a float32 tensor (N, C, H, W) on ``device``.

    Raises ValueError naming the problem: type, dtype, shape, image size, NaN/inf, range.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"images must be floating point in [0, 1], got numpy dtype {x.dtype}; "
                             "convert with x.astype('float32') / 255 for 8-bit images")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise ValueError(f"images must be a torch tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got dtype {x.dtype}; "
                         "convert with x.float() / 255 for 8-bit images")
    x = to_model_layout(x, model.input_shape)
    if x.shape[0] == 0:
        raise ValueError("no images given (N = 0)")
    check_pixels(x)
    return x.to(device=device or next(model.parameters()).device, dtype=torch.float32)


def threshold_at_fpr(clean_scores: np.ndarray, fpr: float) -> float:
    """The smallest threshold t such that at most ``fpr`` of the clean scores are > t
    (flagging is strict: score > t). With ties, the realised FPR may be below ``fpr``."""
    if not isinstance(fpr, (int, float)) or isinstance(fpr, bool) or not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be a number in [0, 1), got {fpr!r}")
    s = np.asarray(clean_scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no clean scores to fit a threshold on")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"{bad} of the {s.size} clean scores are NaN or infinite; a threshold fitted on them "
                         "would flag nothing (check the model and inputs)")
    s = np.sort(s)[::-1]  # descending
    k = int(np.floor(fpr * len(s) + 1e-9))  # how many clean inputs may lie above the threshold
    return float(s[min(k, len(s) - 1)])
