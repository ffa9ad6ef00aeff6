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
- ``stability``: what one FGSM step of size ``stability_eps`` on the input (the sign of its
  cross-entropy gradient) does to the style, the clean style held fixed. A small perturbation that
  flips the label should leave the style where it was, so that the decoder draws the *wrong* class
  in the input's own style, far from the input. ``stability_measure``: ``style`` the squared change
  of the style; ``relative`` the same over the batch's style variance (a style cannot win by
  shrinking); ``recon`` the L2 error of the *true* label decoded with the perturbed style against the
  clean image (only the change the decoder sees counts); ``contrast`` a hinge that asks the
  runner-up class, decoded with the stepped input's style, to be at least twice as far from the
  stepped input as the true label's decoding (it trains the decoder too).
- ``teacher_label``: decode the one-hot true label in training instead of the predicted softmax.
- ``sharpen``: reconstruct the image from a mix lam * onehot(y) + (1 - lam) * onehot(c) of its label
  and a random wrong label c, lam ~ U[0.5, 1): the decoder should draw the class a mixed class
  vector ranks first (as an attacked input's softmax does), not a blend.

Everything is tensor code with no host sync, so it runs inside the CUDA-graph step too. With a
``generator`` (the CPU path) the random labels, noise and masks are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..model import StyleMemoryNet, recon_error
from .config import StyleConfig


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


CONTRAST_RATIO = 2.0  # the ``contrast`` measure asks the runner-up's drawing to be this many times further off


def onehot(model: StyleMemoryNet, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One-hot class vectors (N, C) for ``labels`` in the dtype of ``like``."""
    return F.one_hot(labels, model.num_classes).to(like.dtype)


def train_class_vector(model: StyleMemoryNet, logits: torch.Tensor, y: torch.Tensor, cfg: StyleConfig | None) -> torch.Tensor:
    """The class vector the decoder is trained with: the predicted softmax (the paper), or with
    ``teacher_label`` the one-hot true label."""
    if cfg is not None and cfg.teacher_label:
        return onehot(model, y, logits)
    return model.class_vector(logits, "softmax")  # a label-free autoencoder's logistic code


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random label different from each y."""
    shift = torch.randint(1, num_classes, y.shape, device=y.device, generator=generator)
    return (y + shift) % num_classes


def style_drift(model: StyleMemoryNet, x_in: torch.Tensor, logits: torch.Tensor, style: torch.Tensor,
                y: torch.Tensor, eps: float, measure: str = "style", target: torch.Tensor | None = None) -> torch.Tensor:
    """What one FGSM step x' = clip(x + eps * sign(grad_x CE)) does to the style, as a batch mean:
    ``style`` ||style(x') - style(x)||^2; ``relative`` that over the batch's style variance;
    ``recon`` ||target - decode(onehot(y), style(x'))|| (``target``: the clean image, default x);
    ``contrast`` relu(log 2 + log e_y - log e_r) with e_c = ||x' - decode(onehot(c), style(x'))|| and r
    the class x' ranks highest after y (the label the step pushes toward): the runner-up drawn in the
    stepped input's style must be at least twice as far from it as the true label's drawing.
    ``x_in`` must require grad and ``logits``/``style`` come from ``model.encode(x_in)``. The step
    direction and the clean style are constants: the term trains the network at x' only."""
    grad, = torch.autograd.grad(F.cross_entropy(logits, y), x_in, retain_graph=True)
    x_step = (x_in + eps * grad.sign()).clamp(0.0, 1.0).detach()
    logits_step, style_step = model.encode(x_step)
    if measure == "contrast":
        runner_up = logits_step.detach().scatter(1, y[:, None], float("-inf")).argmax(dim=1)
        err_true = recon_error(x_step, model.decode(onehot(model, y, style), style_step))
        err_wrong = recon_error(x_step, model.decode(onehot(model, runner_up, style), style_step))
        return F.relu(math.log(CONTRAST_RATIO) + err_true.clamp_min(1e-6).log() - err_wrong.clamp_min(1e-6).log()).mean()
    if measure == "recon":
        target = x_in.detach() if target is None else target
        return recon_error(target, model.decode(onehot(model, y, style), style_step)).mean()
    drift = (style_step - style.detach()).pow(2).sum(dim=1).mean()
    if measure == "relative":
        drift = drift / (style - style.mean(dim=0)).pow(2).sum(dim=1).mean().clamp_min(1e-8)
    return drift


def style_terms(model: StyleMemoryNet, style: torch.Tensor, y: torch.Tensor, cfg: StyleConfig | None,
                generator: torch.Generator | None = None, x_in: torch.Tensor | None = None,
                logits: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
    """The weighted sum of the ``[style]`` losses for a batch's styles (a 0-dim tensor). The stability
    term also needs the input (requiring grad), the logits that ``style`` came with, and for its
    ``recon`` measure the clean image the input came from."""
    total = style.new_zeros(())
    if cfg is None:
        return total
    if cfg.stability:
        if x_in is None or logits is None or not x_in.requires_grad:
            raise ValueError("style.stability needs the input (requiring grad) and its logits")
        total = total + cfg.stability * style_drift(model, x_in, logits, style, y, cfg.stability_eps,
                                                     cfg.stability_measure, target)
    if cfg.sharpen:
        ref = target if target is not None else x_in
        if ref is None:
            raise ValueError("style.sharpen needs the image the style came from")
        c = wrong_labels(y, model.num_classes, generator)
        lam = 0.5 + 0.5 * torch.rand(y.shape + (1,), device=y.device, dtype=style.dtype, generator=generator)
        mix = lam * onehot(model, y, style) + (1 - lam) * onehot(model, c, style)
        total = total + cfg.sharpen * recon_error(ref.detach(), model.decode(mix, style)).mean()
    if cfg.consistency:
        c = wrong_labels(y, model.num_classes, generator)
        drawn = model.decode(onehot(model, c, style), style)
        frozen = {name: p.detach() for name, p in model.named_parameters()}
        logits = functional_call(model, frozen, (drawn,))
        total = total + cfg.consistency * F.cross_entropy(logits, c)
    if cfg.critic:
        if not hasattr(model, "style_critic"):
            raise ValueError("style.critic > 0 needs a model built with a critic (build_model does this from the config)")
        total = total + cfg.critic * F.cross_entropy(model.style_critic(grad_reverse(style)), y)
    return total
