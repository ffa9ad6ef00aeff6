"""Adversarial training of the style-memory network: the inner attack and the loss on attacked inputs.

Three recipes (``[adversary] method``):

- ``pgd`` (Madry et al. 2018, "Towards deep learning models resistant to adversarial attacks"):
  cross-entropy on PGD examples found by maximising the cross-entropy in the L-inf eps-ball.
- ``trades`` (Zhang et al. 2019, "Theoretically principled trade-off between robustness and
  accuracy"): cross-entropy on clean inputs + beta * KL(f(x) || f(x_adv)), with x_adv found by
  maximising that KL.
- ``nfgsm`` (de Jorge et al. 2022, "Make some noise: reliable and efficient single-step adversarial
  training"): ``pgd``'s loss on one signed step of eps from a start of uniform noise of
  ``nfgsm_noise`` (default 2) eps, not projected back to the ball: one gradient per batch.

In all the decoder is trained on the clean input and on the attacked one; from the attacked input
it rebuilds ``recon_target``: the clean image (so the reconstruction error of an attacked input
grows with its perturbation, which the ``recon`` detector reads) or the attacked image itself.

Everything runs on tensors on the model's device with a fixed number of iterations and ``eps`` held
in a 0-dim device tensor: no host synchronisation, so on CUDA the inner attack and the update are
captured together in one CUDA graph (``steps.GraphStep``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import StyleMemoryNet, recon_error
from .config import AdversaryConfig, StyleConfig
from .style_losses import decoder_style, style_terms, train_class_vector
from .weight_perturbation import WeightPerturbation


def eps_schedule(cfg: AdversaryConfig, steps_per_epoch: int):
    """eps at global step t: 0 for ``warmup_epochs``, then linear to ``eps`` over ``ramp_epochs``."""
    warm = cfg.warmup_epochs * steps_per_epoch
    ramp = cfg.ramp_epochs * steps_per_epoch

    def at(t: int) -> float:
        if cfg.method == "none" or t < warm:
            return 0.0
        return cfg.eps if ramp <= 0 else cfg.eps * min(1.0, (t - warm + 1) / ramp)

    return at


class InnerAttack:
    """L-inf PGD (or single-step N-FGSM) on the network itself, run inside each training step.

    ``eps`` is a 0-dim tensor on the device (updated with ``fill_`` between steps, so a captured
    CUDA graph sees the new value). Shapes: x (N, C, H, W) in [0, 1], y (N,) -> x_adv like x.
    """

    def __init__(self, cfg: AdversaryConfig, device: torch.device):
        self.cfg = cfg
        self.eps = torch.zeros((), device=device)
        # step size relative to eps, so the ramp-up scales the steps with the ball
        default = 1.0 if cfg.method == "nfgsm" else 2.5 / cfg.steps
        self.step_ratio = cfg.step_size / cfg.eps if cfg.step_size > 0 else default

    def set_eps(self, value: float) -> None:
        self.eps.fill_(value)

    def _objective(self, logits: torch.Tensor, y: torch.Tensor, clean_probs: torch.Tensor | None) -> torch.Tensor:
        if clean_probs is not None:  # TRADES: move the prediction away from the clean one
            return F.kl_div(logits.log_softmax(dim=1), clean_probs, reduction="sum")
        return F.cross_entropy(logits, y, reduction="sum")  # sum: each input's gradient is its own

    def perturb(self, model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None = None, clean_logits: torch.Tensor | None = None) -> torch.Tensor:
        x = x.detach()
        eps = self.eps
        if self.cfg.method == "nfgsm":
            return self._nfgsm(model, x, y, generator)
        adv = x
        if self.cfg.random_start:
            u = torch.rand(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            adv = (x + (2.0 * u - 1.0) * eps).clamp(0.0, 1.0)
        clean_probs = clean_logits.detach().softmax(dim=1) if clean_logits is not None else None
        step = eps * self.step_ratio
        for _ in range(self.cfg.steps):
            adv = adv.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._objective(model(adv), y, clean_probs), adv)
            adv = adv.detach() + step * grad.sign()
            adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(0.0, 1.0)
        return adv.detach()

    def _nfgsm(self, model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor,
               generator: torch.Generator | None) -> torch.Tensor:
        """N-FGSM (de Jorge et al. 2022, "Make some noise"): one signed step of ``step_size`` (default
        eps) from uniform noise of ``nfgsm_noise`` * eps, not projected back to the eps-ball (only to
        [0, 1]): the noise and the larger step are what keep single-step training from catastrophic
        overfitting, at one gradient per batch instead of PGD's ``steps``."""
        u = torch.rand(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        adv = (x + (2.0 * u - 1.0) * (self.cfg.nfgsm_noise * self.eps)).clamp(0.0, 1.0).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._objective(model(adv), y, None), adv)
        return (adv.detach() + self.eps * self.step_ratio * grad.sign()).clamp(0.0, 1.0)


def classification_loss(cfg: AdversaryConfig, logits: torch.Tensor | None, logits_adv: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """The recipe's classification part: TRADES' clean cross-entropy + beta * KL(f(x) || f(x_adv)), or
    the cross-entropy on the attacked inputs (with ``clean_weight`` of it taken on the clean ones; the
    clean ``logits`` may be None when neither needs them)."""
    if cfg.method == "trades":
        kl = F.kl_div(logits_adv.log_softmax(dim=1), logits.softmax(dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + cfg.beta * kl
    w = cfg.clean_weight
    return (1.0 - w) * F.cross_entropy(logits_adv, y) + (w * F.cross_entropy(logits, y) if w else 0.0)


def adversarial_loss(model: StyleMemoryNet, attack: InnerAttack, x_in: torch.Tensor, target: torch.Tensor,
                     y: torch.Tensor, alpha: float, generator: torch.Generator | None = None,
                     style_cfg: StyleConfig | None = None, awp: WeightPerturbation | None = None):
    """The training objective on a batch with its attacked copy. Returns (loss, ce, recon, style_loss).

    ``x_in`` is the (noisy) clean input, ``target`` the clean image it came from; the inner attack
    starts from ``target``. ``ce`` is the whole classification part (for TRADES, with the KL term).
    The ``[style]`` terms (``style_cfg``) are taken on the clean branch. With ``awp`` the batch is
    attacked first, the weights are then perturbed (``weight_perturbation``) and the whole loss is
    taken at the perturbed weights; the caller restores them after the backward pass.
    """
    cfg = attack.cfg
    trades = cfg.method == "trades"
    x_adv = None
    if awp is not None:
        clean_logits = model(x_in) if trades or cfg.clean_weight else None
        x_adv = attack.perturb(model, target, y, generator, clean_logits=clean_logits if trades else None)
        awp.apply(classification_loss(cfg, clean_logits, model(x_adv), y))
    if style_cfg is not None and style_cfg.stability:
        x_in = x_in.detach().requires_grad_(True)  # the stability term steps along the input gradient
    logits, style = model.encode(x_in)
    rec_clean = recon_error(target, model.decode(train_class_vector(model, logits, y, style_cfg),
                                                 decoder_style(style, style_cfg, generator))).mean()
    extra = style_terms(model, style, y, style_cfg, generator, x_in=x_in, logits=logits, target=target)
    if x_adv is None:
        x_adv = attack.perturb(model, target, y, generator, clean_logits=logits if trades else None)
    logits_adv, style_adv = model.encode(x_adv)
    rebuild = target if cfg.recon_target == "clean" else x_adv
    rec_adv = recon_error(rebuild, model.decode(train_class_vector(model, logits_adv, y, style_cfg),
                                                decoder_style(style_adv, style_cfg, generator))).mean()
    ce = classification_loss(cfg, logits, logits_adv, y)
    rec = 0.5 * (rec_clean + rec_adv)
    return ce + alpha * rec + extra, ce, rec, extra
