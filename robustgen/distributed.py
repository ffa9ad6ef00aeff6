"""Scale-out on torch.distributed: ``torchrun --nproc-per-node N -m robustgen attack|train ...``.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; :func:`init_from_env` joins the process group (NCCL
with one GPU per process where there are GPUs, gloo on the CPU). Without torchrun nothing here
does anything: ``world()`` is (0, 1) and every helper is the identity.

- Attacks (``attacks.run_attack``): the test set is cut into batches on one global grid; process r
  attacks the batches k with k % N == r, each batch's random start seeded by (seed, index of its
  first input), and the adversarial batches are gathered on every process, in order. The report is
  therefore identical to the single-process one, and only rank 0 writes it.
- Training (``train.fit``): the model is wrapped in DistributedDataParallel; every process walks
  the same seeded permutation and takes its 1/N slice of each global batch, so the averaged
  gradient is the one of the whole batch. Rank 0 writes the run folder.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (once) and return this process's device: with
    CUDA, ``cuda:LOCAL_RANK``. Outside torchrun, returns ``device`` unchanged."""
    if not launched_by_torchrun():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def my_batches(n: int, batch_size: int) -> list[int]:
    """Start indices of this process's batches on the global grid 0, b, 2b, ... (round robin)."""
    rank, size = world()
    return list(range(0, n, batch_size))[rank::size]


def gather_batches(mine: dict[int, torch.Tensor], n: int, batch_size: int) -> torch.Tensor:
    """Concatenate every process's batches {start: tensor} in global order (with several processes,
    gathered on the CPU; with one, where the batches are)."""
    rank, size = world()
    if size > 1:
        parts: list = [None] * size
        dist.all_gather_object(parts, {k: v.cpu() for k, v in mine.items()})
        mine = {k: v for part in parts for k, v in part.items()}
    return torch.cat([mine[start] for start in range(0, n, batch_size)])


def batch_seed(seed: int, start: int) -> int:
    """The random-start seed of the batch whose first input has global index ``start``."""
    return seed * 1_000_003 + start
