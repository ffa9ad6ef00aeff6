"""Weight averaging: an exponential moving average of the trained weights, kept beside them.

Adversarial training overfits its own attack late in a run (Rice et al. 2020): the robust accuracy of
the final weights falls while the training loss keeps going down. An average of the weights over the
last few thousand steps is smoother and more robust than any one of them (Gowal et al. 2020, Rebuffi
et al. 2021). ``train.ema`` is the decay per step (0.999: a horizon of about 1,000 steps); the averaged
weights are what a run saves as its model, the trained ones go into the checkpoint to resume from.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..model import StyleMemoryNet


class WeightAverage:
    """The exponential moving average of ``model``'s parameters and buffers (``torch.optim.swa_utils``):
    ``update()`` after each optimizer step; ``module`` is the averaged network."""

    def __init__(self, model: StyleMemoryNet, decay: float, averaged_state: dict | None = None):
        if not 0 < decay < 1:
            raise ValueError(f"the averaging decay must lie in (0, 1), got {decay}")
        self.model = model
        self._avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        if averaged_state is not None:  # resuming: the average so far, not a fresh copy of the weights
            self.module.load_state_dict(averaged_state)
            self._avg.n_averaged.fill_(1)

    @property
    def module(self) -> StyleMemoryNet:
        return self._avg.module

    @torch.no_grad()
    def update(self) -> None:
        self._avg.update_parameters(self.model)
