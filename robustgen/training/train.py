"""Training: learning-rate schedule, evaluation, ``fit`` and the run that ``robustgen train`` does.

``train_run(cfg)`` makes a run folder, trains, and after every epoch appends a row to
``metrics.csv`` and atomically rewrites ``checkpoint.pt``; ``train_run(resume=RUN)`` continues an
interrupted run from its last checkpoint, in the same folder.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed

from .. import checkpoint as ckpt_io
from ..data import DatasetInfo, dataset_info, load_dataset, pixel_stats
from ..distributed import init_from_env, is_main, world
from ..inference import evaluate
from ..model import ModelSpec, StyleMemoryNet
from ..runs import (
    MetricsLog,
    create_run_dir,
    environment_record,
    resolve_device,
    resolve_precision,
    seed_everything,
    write_json,
)
from .adversary import InnerAttack, eps_schedule
from .averaging import WeightAverage
from .config import Config, config_from_dict, to_toml
from .steps import EagerStep, GraphStep, load_optimizer_state, make_optimizer
from .validation import validate


def lr_schedule(kind: str, peak: float, total_steps: int, warmup_frac: float = 0.0) -> Callable[[int], float]:
    """Learning rate at global step t: constant, cosine decay to 0, or one-cycle (linear warm-up
    from peak/25 over ``warmup_frac`` of the steps, then cosine decay to 0)."""
    warm = int(round(warmup_frac * total_steps)) if kind == "onecycle" else 0

    def at(t: int) -> float:
        if kind == "constant":
            return peak
        if t < warm:
            return peak * (0.04 + 0.96 * t / warm)
        progress = (t - warm) / max(1, total_steps - warm)
        return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return at


def build_model(cfg: Config, info: DatasetInfo | int | None = None, mean: tuple[float, ...] | None = None,
                std: tuple[float, ...] | None = None) -> StyleMemoryNet:
    """The network of ``cfg.model`` for the images of ``info`` (default: ``cfg.data.dataset``'s; an int
    keeps that shape with this many classes), normalising with (mean, std) (default: the per-channel
    statistics of the dataset's official training part)."""
    d, m = cfg.data, cfg.model
    if info is None or isinstance(info, int):
        base = dataset_info(d.dataset, d.data_dir, d.download)
        info = base if info is None else dataclasses.replace(base, num_classes=info)
    if mean is None or std is None:
        mean, std = pixel_stats(d.dataset, d.data_dir, d.download)
    critic = cfg.style.critic_hidden if cfg.style.critic else -1
    return StyleMemoryNet(ModelSpec(num_classes=info.num_classes, style_dim=m.style_dim, channels=tuple(m.channels),
                                    kernel_size=m.kernel_size, hidden=tuple(m.hidden), in_channels=info.channels,
                                    height=info.height, width=info.width, mean=tuple(mean), std=tuple(std),
                                    encoder=m.encoder, critic_hidden=critic, separate_style=m.separate_style,
                                    label_free=m.label_free))


def initial_weights(cfg: Config, model: StyleMemoryNet) -> None:
    """Load ``cfg.train.init``'s weights (a shipped model's name, a run folder, a checkpoint or an exported
    model) into ``model``, which must have the same architecture; the pixel statistics stay ``model``'s
    (its dataset's, in float32). Raises ValueError naming the first field that differs."""
    from ..checkpoint import CheckpointError
    from ..pretrained import load_model  # the one loader of every kind of saved model

    try:
        source = load_model(cfg.train.init)
    except CheckpointError as e:
        raise ValueError(f"train.init: {e}") from None
    old, new = dataclasses.asdict(source.spec), dataclasses.asdict(model.spec)
    for key in new:
        if key not in ("mean", "std") and old[key] != new[key]:
            raise ValueError(f"train.init: {cfg.train.init} has model {key} = {old[key]!r} but this run's config "
                             f"gives {new[key]!r}; fine-tuning needs the same architecture")
    state = source.state_dict()
    state["pixel_mean"], state["pixel_std"] = model.pixel_mean, model.pixel_std
    model.load_state_dict(state)


def note_resume(path: Path, before: Config, after: Config, epoch: int) -> None:
    """Append to a run's config.toml, as TOML comments, that it was resumed after ``epoch`` and which
    keys the resume changed (``--epochs``, ``--device``); what was written before stays as it was."""
    old, new = to_toml(before).splitlines(), to_toml(after).splitlines()
    changed = [line for line in new if line not in old and "=" in line]
    lines = [f"# resumed after epoch {epoch} on {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
             + (": " + "; ".join(changed) if changed else ", nothing changed")]
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch  # each epoch's permutation and noise depend only on (seed, epoch)


def fit(model: StyleMemoryNet, optimizer: torch.optim.Optimizer, cfg: Config, train_xy, val_xy, *,
        start_epoch: int = 0, on_epoch_end: Callable[[dict], None] | None = None,
        progress: bool = False, average: WeightAverage | None = None) -> list[dict]:
    """Train from ``start_epoch`` to ``cfg.train.epochs``; return one stats dict per epoch run.

    ``train_xy``/``val_xy`` are (x, y) tensors already on the model's device. With ``progress``
    a tqdm bar per epoch shows the step count, then loss and validation accuracy. With ``train.ema``
    the validation figures are the averaged weights' (``average``, made here when not given; the
    trained weights' accuracy is ``val_accuracy_trained``), and ``model`` ends holding the average.
    """
    t = cfg.train
    x, y = train_xy
    device = x.device
    steps = x.shape[0] // t.batch_size  # full batches only: a CUDA graph needs static shapes
    if steps == 0:
        raise ValueError(f"the training set ({x.shape[0]} images) is smaller than one batch ({t.batch_size})")
    schedule = lr_schedule(t.lr_schedule, t.lr, steps * t.epochs, t.warmup_frac)
    rank, world_size = world()
    use_graph = device.type == "cuda" and t.cuda_graph and world_size == 1  # DDP steps run eagerly
    runner_cls = GraphStep if use_graph else EagerStep
    adversary = InnerAttack(cfg.adversary, device) if cfg.adversary.method != "none" else None
    if t.ema and average is None:
        average = WeightAverage(model, t.ema)
    eps_at = eps_schedule(cfg.adversary, steps)
    runner = runner_cls(model, optimizer, x, y, batch_size=t.batch_size, alpha=t.alpha,
                        noise_std=t.noise_std, shift=t.shift, adversary=adversary, style=cfg.style, flip=t.flip,
                        precision=resolve_precision(t.precision, device), average=average)
    if world_size > 1:
        runner.distribute(rank, world_size)
    history = []
    for epoch in range(start_epoch, t.epochs):
        seed = _epoch_seed(t.seed, epoch)
        cpu_gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(x.shape[0], generator=cpu_gen).to(device)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)  # noise and shifts use the default CUDA generator
        noise_gen = cpu_gen if device.type == "cpu" else None
        if world_size > 1:  # the same permutation everywhere, each process its own noise
            if device.type == "cpu":
                noise_gen = torch.Generator().manual_seed(seed + 7919 * rank)
            else:
                torch.cuda.manual_seed(seed + 7919 * rank)
        lrs = [schedule(epoch * steps + i) for i in range(steps)]
        eps = [eps_at(epoch * steps + i) for i in range(steps)] if adversary else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{t.epochs}", unit="step", leave=True)
        start = time.perf_counter()
        sums = runner.run_epoch(perm, lrs, noise_gen, on_step=bar.update if bar else None, eps=eps)
        if world_size > 1:
            torch.distributed.all_reduce(sums)
            sums /= world_size
        ce, rec, extra = (sums / steps).tolist()  # the epoch's one host sync
        seconds = time.perf_counter() - start
        val = evaluate(average.module if average else model, *val_xy, batch_size=t.eval_batch_size)
        stats = {"epoch": epoch + 1, "loss": ce + t.alpha * rec + extra, "ce": ce, "recon": rec,
                 "val_accuracy": float("nan") if model.label_free else val["accuracy"], "val_recon": val["recon_pred_softmax"],
                 "lr_end": lrs[-1], "epoch_seconds": seconds}
        if average:
            stats["val_accuracy_trained"] = evaluate(model, *val_xy, batch_size=t.eval_batch_size)["accuracy"]
        if adversary:
            stats["adv_eps_end"] = eps[-1]
        if cfg.style.active:
            stats["style_loss"] = extra
        if bar:
            bar.set_postfix(loss=f"{stats['loss']:.4f}", val_acc=f"{stats['val_accuracy']:.4f}")
            bar.close()
        history.append(stats)
        if on_epoch_end:
            on_epoch_end(stats)
    if average:
        model.load_state_dict(average.module.state_dict())
    return history


def _load_split(cfg: Config, split: str, device: torch.device, limit: int | None = None):
    d = cfg.data
    x, y = load_dataset(d.dataset, split, d.data_dir, val_size=d.val_size, limit=limit, download=d.download)
    return x.to(device), y.to(device)


def train_run(cfg: Config | None = None, *, resume: str | Path | None = None, progress: bool = False,
              epochs: int | None = None, device: str | None = None) -> Path | None:
    """Train a new run from ``cfg`` (or continue ``resume``); return the run folder.

    When resuming, ``epochs`` may extend the run beyond its configured length. Under torchrun every
    process trains its share (DistributedDataParallel, see ``robustgen.distributed``); only rank 0
    writes the run folder, and the other ranks return None.
    """
    if resume is not None:
        state = ckpt_io.load_checkpoint(resume)
        run_dir = Path(state["path"]).parent
        cfg = config_from_dict(state["config"])
        if "precision" not in state["config"].get("train", {}):  # written before the key: it trained in float32
            cfg.train.precision = "float32"
        if epochs is not None:
            cfg.train.epochs = epochs
        if device is not None:
            cfg.train.device = device
        validate(cfg)
        start_epoch = state["epoch"]
        if start_epoch >= cfg.train.epochs:
            raise ValueError(f"{run_dir} already finished its {cfg.train.epochs} epochs; pass --epochs N "
                             "with a larger N to train it further")
    else:
        assert cfg is not None, "train_run needs a config or a run to resume"
        state, start_epoch = None, 0
    dev = init_from_env(resolve_device(cfg.train.device))
    cfg.train.precision = resolve_precision(cfg.train.precision, dev)  # the run records what it ran with
    main = is_main()
    if cfg.train.batch_size % world()[1]:
        raise ValueError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the number of processes "
                         f"({world()[1]}); pass --batch-size or start torchrun with another --nproc-per-node")
    seed_everything(cfg.train.seed)
    info = dataset_info(cfg.data.dataset, cfg.data.data_dir, cfg.data.download)
    train_xy = _load_split(cfg, "train", dev, cfg.data.limit_train)
    val_xy = _load_split(cfg, "val", dev)
    if train_xy[0].shape[0] < cfg.train.batch_size:  # refused before any run folder is made
        raise ValueError(f"the training set ({train_xy[0].shape[0]} images, data.limit_train = {cfg.data.limit_train}) "
                         f"is smaller than one batch (train.batch_size = {cfg.train.batch_size})")
    average = None
    if state is not None:
        model = ckpt_io.model_from_checkpoint(state, dev).train()
        if cfg.train.ema:  # the checkpoint's model is the average; the weights to train on are kept beside it
            average = WeightAverage(model, cfg.train.ema, averaged_state=model.state_dict())
            model.load_state_dict(state["extra"]["trained_state"])
    else:
        model = build_model(cfg, info)
        if cfg.train.init:
            initial_weights(cfg, model)
        model = model.to(dev)
        average = WeightAverage(model, cfg.train.ema) if cfg.train.ema else None
    use_graph = dev.type == "cuda" and cfg.train.cuda_graph
    optimizer = make_optimizer(model, cfg.train.lr, cfg.train.weight_decay, dev, use_graph)

    if state is not None:
        if state["model_spec"]["num_classes"] != info.num_classes:
            raise ValueError(f"{resume} was trained with {state['model_spec']['num_classes']} classes but "
                             f"{cfg.data.dataset} has {info.num_classes}")
        if state["optimizer_state"] is not None:
            load_optimizer_state(optimizer, state["optimizer_state"])
        if main:  # config.toml and metrics.csv are only ever appended to
            note_resume(run_dir / "config.toml", config_from_dict(state["config"]), cfg, start_epoch)
            MetricsLog(run_dir / "metrics.csv").restore(state["extra"].get("metrics_row"))
    elif main:
        run_dir = create_run_dir(cfg.runs_dir, cfg.name)
        (run_dir / "config.toml").write_text(to_toml(cfg))
    if not main:  # train in step with rank 0, write nothing
        fit(model, optimizer, cfg, train_xy, val_xy, start_epoch=start_epoch, average=average)
        return None
    env = environment_record(dev)
    env["processes"] = world()[1]
    write_json(run_dir / ("environment.json" if state is None else f"environment-resume-{start_epoch}.json"), env)
    metrics = MetricsLog(run_dir / "metrics.csv")
    dataset = {"name": info.name, "num_classes": info.num_classes, "class_names": list(info.class_names),
               "shape": list(info.shape)}

    def save(stats: dict) -> None:  # the checkpoint first: a crash between the two loses no row (see restore)
        extra = {"val_accuracy": stats["val_accuracy"], "val_recon": stats["val_recon"], "metrics_row": stats}
        if average:  # the run's model is the average; the trained weights are what a resume trains on
            extra["trained_state"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        ckpt_io.save_checkpoint(run_dir / ckpt_io.CHECKPOINT_NAME, model=average.module if average else model,
                                optimizer=optimizer, epoch=stats["epoch"], config=cfg.to_dict(), dataset=dataset,
                                extra=extra)
        metrics.append(stats)

    fit(model, optimizer, cfg, train_xy, val_xy, start_epoch=start_epoch, on_epoch_end=save, progress=progress,
        average=average)
    return run_dir
