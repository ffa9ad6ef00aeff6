"""One training epoch, two ways: plain eager steps (CPU, or CUDA without graphs) and a CUDA-graph
step that replays the whole forward/backward/Adam update with no host synchronisation. With an
adversary (``adversary.InnerAttack``) the step first attacks the batch; on CUDA that inner attack is
part of the captured graph.

Both keep the dataset on the device as one tensor and index it with a random permutation (no
DataLoader). Loss parts are summed on the device and read once per epoch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..model import StyleMemoryNet, recon_error
from .adversary import InnerAttack, adversarial_loss
from .averaging import WeightAverage
from .config import StyleConfig
from .style_losses import decoder_style, style_terms, train_class_vector
from .weight_perturbation import WeightPerturbation


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image (N, C, H, W) by its own random integer offset in [-max_shift, max_shift]^2,
    filling with zeros. Pure tensor ops (gather), so it runs inside a CUDA graph."""
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift))  # (N, C, H+2s, W+2s)
    off = torch.randint(0, 2 * max_shift + 1, (n, 2), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device)[None, :] + off[:, :1]  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] + off[:, 1:]  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image (N, C, H, W) left-right with probability 1/2 (no host sync: a masked blend)."""
    keep = torch.randint(0, 2, (x.shape[0], 1, 1, 1), device=x.device, generator=generator).to(x.dtype)
    return keep * x + (1 - keep) * x.flip(-1)


def corrupt(x: torch.Tensor, noise_std: float, shift: int, generator: torch.Generator | None = None,
            flip: bool = False):
    """Return (target, noisy input): the (shifted, mirrored) clean image the decoder must rebuild, and
    that image with additive Gaussian noise, clipped to the valid pixel range."""
    if shift:
        x = random_shift(x, shift, generator)
    if flip:
        x = random_flip(x, generator)
    if noise_std:
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        return x, (x + noise_std * noise).clamp_(0.0, 1.0)
    return x, x


def loss_terms(model: StyleMemoryNet, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, alpha: float,
               style_cfg: StyleConfig | None = None, generator: torch.Generator | None = None):
    """The paper's objective: cross-entropy + alpha * mean per-image L2 reconstruction error, with the
    decoder fed the predicted softmax and the style memory, plus the ``[style]`` terms when set. A
    label-free autoencoder has no cross-entropy (ce = 0). Returns (loss, ce, recon, style_loss)."""
    if style_cfg is not None and style_cfg.stability:
        x_in = x_in.detach().requires_grad_(True)  # the stability term steps along the input gradient
    logits, style = model.encode(x_in)
    x_hat = model.decode(train_class_vector(model, logits, y, style_cfg), decoder_style(style, style_cfg, generator))
    ce = logits.new_zeros(()) if model.label_free else F.cross_entropy(logits, y)
    rec = recon_error(target, x_hat).mean()
    extra = style_terms(model, style, y, style_cfg, generator, x_in=x_in, logits=logits, target=target)
    return ce + alpha * rec + extra, ce, rec, extra


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)  # a device kernel, no host sync
        else:
            group["lr"] = lr


class EagerStep:
    """Plain PyTorch steps; the only path on the CPU (torch.compile is slower there)."""

    # with bfloat16 autocast the weights' bfloat16 copies are cached within a step (reused by every pass
    # of the inner attack)
    AUTOCAST_CACHE = True

    def __init__(self, model, optimizer, x, y, *, batch_size: int, alpha: float, noise_std: float, shift: int,
                 adversary: InnerAttack | None = None, style: StyleConfig | None = None, flip: bool = False,
                 precision: str = "float32", average: WeightAverage | None = None):
        self.model, self.optimizer, self.x, self.y = model, optimizer, x, y
        self.average = average  # updated after every optimizer step (outside a CUDA graph: one host sync)
        self.bf16 = precision == "bfloat16"  # autocast: bfloat16 matrix products (AMX on the CPU), float32 weights
        self.flip = flip
        self.batch_size, self.alpha, self.noise_std, self.shift = batch_size, alpha, noise_std, shift
        self.adversary = adversary
        # adversarial weight perturbation: the step's gradient is taken at perturbed weights, restored before the update
        self.awp = WeightPerturbation(model, adversary.cfg.awp) if adversary is not None and adversary.cfg.awp else None
        self.style = style if style is not None and style.active else None
        self.sums = torch.zeros(3, device=x.device)  # ce, recon, style terms
        self.rank, self.world = 0, 1
        self.loss_fn = self.losses

    def distribute(self, rank: int, world: int) -> None:
        """Train as one of ``world`` DistributedDataParallel processes: each takes its 1/world slice
        of every global batch and DDP averages the gradients (so the update is the whole batch's)."""
        from torch.nn.parallel import DistributedDataParallel

        if self.awp is not None:  # it moves the weights inside the loss, where DDP expects them fixed
            raise ValueError("adversary.awp does not run under torchrun (DistributedDataParallel); train in one process")
        if self.batch_size % world:
            raise ValueError(f"train.batch_size ({self.batch_size}) must be divisible by the number of processes ({world})")
        self.rank, self.world = rank, world
        self.loss_fn = DistributedDataParallel(_StepLoss(self), device_ids=None if self.x.device.type == "cpu"
                                               else [self.x.device.index])

    def losses(self, x_in: torch.Tensor, target: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """(loss, ce, recon, style terms) of one (noisy input, clean target, label) batch."""
        if self.adversary is not None:
            return adversarial_loss(self.model, self.adversary, x_in, target, y, self.alpha, generator,
                                    style_cfg=self.style, awp=self.awp)
        return loss_terms(self.model, x_in, target, y, self.alpha, self.style, generator)

    def step(self, idx: torch.Tensor, generator: torch.Generator | None) -> None:
        if self.world > 1:
            idx = idx.view(self.world, -1)[self.rank]
        target, x_in = corrupt(self.x[idx], self.noise_std, self.shift, generator, self.flip)
        with torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                            cache_enabled=self.AUTOCAST_CACHE):
            loss, ce, rec, extra = self.loss_fn(x_in, target, self.y[idx], generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.awp is not None:
            self.awp.restore()  # the gradient was taken at the perturbed weights; the update applies to w
        self.optimizer.step()
        self.sums += torch.stack([ce.detach(), rec.detach(), extra.detach()])

    def set_schedule(self, lr: float, eps: float | None) -> None:
        set_lr(self.optimizer, lr)
        if self.adversary is not None:
            self.adversary.set_eps(eps)  # a device kernel, no host sync

    def run_epoch(self, perm: torch.Tensor, lrs: list[float], generator: torch.Generator | None,
                  on_step: Callable[[], None] | None = None, eps: list[float] | None = None) -> torch.Tensor:
        """Train on ``len(lrs)`` full batches taken in ``perm`` order; return summed (ce, recon, style terms).
        ``eps[i]`` is the adversary's budget at step i (ignored without an adversary)."""
        self.model.train()
        self.sums.zero_()
        b = self.batch_size
        for i, lr in enumerate(lrs):
            self.set_schedule(lr, eps[i] if eps else None)
            self.step(perm[i * b:(i + 1) * b], generator)
            self.after_step(on_step)
        return self.sums.clone()

    def after_step(self, on_step: Callable[[], None] | None) -> None:
        """What follows every optimizer step, on either path: the weight average, then the caller's hook."""
        if self.average is not None:
            self.average.update()
        if on_step:
            on_step()


class _StepLoss(torch.nn.Module):
    """The step's loss as a module, so that DistributedDataParallel can wrap it: its parameters are
    the network's, its forward the runner's ``losses``."""

    def __init__(self, runner: EagerStep):
        super().__init__()
        self.net = runner.model
        self._losses = runner.losses  # a bound method, not a submodule

    def forward(self, x_in, target, y, generator):
        return self._losses(x_in, target, y, generator)


class GraphStep(EagerStep):
    """The same step captured once as a CUDA graph and replayed (the batch index is a static buffer).

    Needs an optimizer built with ``capturable=True`` and a tensor learning rate. Random noise and
    shifts use the default CUDA generator, which CUDA graphs support natively.
    """

    WARMUP_STEPS = 3
    AUTOCAST_CACHE = False  # a replay must cast the updated weights again, not reuse the capture's copies

    def __init__(self, model, optimizer, x, y, **kw):
        super().__init__(model, optimizer, x, y, **kw)
        self.idx = torch.zeros(self.batch_size, dtype=torch.long, device=x.device)
        self.graph = None

    def _capture(self, perm: torch.Tensor) -> None:
        self.idx.copy_(perm[: self.batch_size])
        # Warm-up steps on a side stream build the optimizer state and cuDNN plans before capture.
        # They must not count as training, so weights and optimizer state are restored afterwards.
        saved_model = {k: v.clone() for k, v in self.model.state_dict().items()}
        saved_opt = {p: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
                     for p, s in self.optimizer.state.items()}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.WARMUP_STEPS):
                self.step(self.idx, None)
        torch.cuda.current_stream().wait_stream(stream)
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                v.copy_(saved_model[k])
            for p, state in self.optimizer.state.items():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor):
                        v.copy_(saved_opt[p][k]) if p in saved_opt else v.zero_()
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step(self.idx, None)

    def run_epoch(self, perm, lrs, generator, on_step=None, eps=None):
        self.model.train()
        if self.graph is None:
            self._capture(perm)
        self.sums.zero_()
        b = self.batch_size
        for i, lr in enumerate(lrs):
            self.set_schedule(lr, eps[i] if eps else None)
            self.idx.copy_(perm[i * b:(i + 1) * b])
            self.graph.replay()
            self.after_step(on_step)
        return self.sums.clone()


def make_optimizer(model: StyleMemoryNet, lr: float, weight_decay: float, device: torch.device,
                   graph: bool) -> torch.optim.Optimizer:
    """Adam (AdamW when weight_decay > 0). For CUDA graphs: capturable state and a tensor lr.
    On the CPU the fused kernel is used: one pass over all parameters instead of one per tensor."""
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    kw = {"weight_decay": weight_decay} if weight_decay else {}
    if graph:
        return cls(model.parameters(), lr=torch.tensor(lr, device=device), capturable=True, foreach=True, **kw)
    return cls(model.parameters(), lr=lr, fused=True, **kw)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Restore a saved (portable) optimizer state into an optimizer of possibly another kind
    (CPU fused / CUDA capturable): moments are restored, this optimizer's own settings are kept."""
    settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, settings):
        group.update(own)
    for p, s in optimizer.state.items():
        for k, v in s.items():
            if isinstance(v, torch.Tensor):
                if k == "step" and not (group_flag(optimizer, "capturable") or group_flag(optimizer, "fused")):
                    s[k] = v.float().cpu()
                else:
                    s[k] = v.to(device=p.device, dtype=torch.float32)


def group_flag(optimizer: torch.optim.Optimizer, name: str) -> bool:
    return bool(optimizer.param_groups[0].get(name))
