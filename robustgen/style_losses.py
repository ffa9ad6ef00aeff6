"""Training terms that make the class vector carry *what* a digit is and the style memory only *how*
it was drawn (``[style]`` config section; all off by default).

- ``consistency`` (class consistency): decode the style under a random wrong label c and require the
  network to classify the drawing as c. The judge's weights get no gradient from this term (it
  could otherwise learn to call any drawing c); the decoder and, through the style, the encoder do.
- ``critic`` (Ganin & Lempitsky 2015, "Unsupervised domain adaptation by backpropagation"; Lample
  et al. 2017, "Fader networks"): a small classifier reads the class from the style; a
  gradient-reversal layer between style and critic makes the encoder remove what the critic finds.
- ``noise`` / ``dropout`` on the style before decoding: a narrower channel for the style, so the
  decoder must take the class from the label.

Everything is tensor code with no host sync, so it runs inside the CUDA-graph step too. With a
``generator`` (the CPU path) the random labels, noise and masks are reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .config import StyleConfig
from .model import StyleMemoryNet


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def grad_reverse(x: torch.Tensor) -> torch.Tensor:
    """Identity forward, negated gradient backward."""
    return _GradReverse.apply(x)


def decoder_style(style: torch.Tensor, cfg: StyleConfig | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The style as the decoder sees it during training: with Gaussian noise and inverted dropout."""
    if cfg is None:
        return style
    if cfg.noise:
        style = style + cfg.noise * torch.randn(style.shape, device=style.device, dtype=style.dtype, generator=generator)
    if cfg.dropout:
        keep = torch.rand(style.shape, device=style.device, dtype=style.dtype, generator=generator) >= cfg.dropout
        style = style * keep.to(style.dtype) / (1.0 - cfg.dropout)
    return style


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random label different from each y."""
    shift = torch.randint(1, num_classes, y.shape, device=y.device, generator=generator)
    return (y + shift) % num_classes


def style_terms(model: StyleMemoryNet, style: torch.Tensor, y: torch.Tensor, cfg: StyleConfig | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The weighted sum of the consistency and critic losses for a batch's styles (a 0-dim tensor)."""
    total = style.new_zeros(())
    if cfg is None:
        return total
    if cfg.consistency:
        c = wrong_labels(y, model.num_classes, generator)
        drawn = model.decode(F.one_hot(c, model.num_classes).to(style.dtype), style)
        frozen = {name: p.detach() for name, p in model.named_parameters()}
        logits = functional_call(model, frozen, (drawn,))
        total = total + cfg.consistency * F.cross_entropy(logits, c)
    if cfg.critic:
        if not hasattr(model, "style_critic"):
            raise ValueError("style.critic > 0 needs a model built with a critic (build_model does this from the config)")
        total = total + cfg.critic * F.cross_entropy(model.style_critic(grad_reverse(style)), y)
    return total
