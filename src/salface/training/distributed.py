"""Data-parallel training under ``torchrun`` (PyTorch DistributedDataParallel).

``salface train`` started by ``torchrun --nproc_per_node N`` (one process per GPU, or several CPU
processes) trains one model on N processes. :func:`setup_distributed` reads torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/
``MASTER_PORT``), joins the process group (NCCL when training on CUDA, Gloo on the CPU) and gives
:mod:`salface.train` the few hooks it calls. Without torchrun (``WORLD_SIZE`` unset or 1) every
hook is a no-op and training is exactly the single-process code.

How the work is split (the choices):

* **The global batch is the preset's batch.** Every rank draws the same epoch order and the same
  augmentation (same seeds), augments the whole global batch, and keeps its contiguous
  ``batch_size / world`` share (:meth:`DistContext.shard`). The samples, their augmentation and
  the order are therefore exactly those of the one-process run with the same seed; each rank
  augments the whole batch (cheap next to the network) instead of a share.
  ``batch_size`` must be a multiple of the world size, and each epoch's order is cut to a multiple
  of it (at most ``world − 1`` samples, different ones each epoch, sit out an epoch).
* DDP averages the ranks' gradients, so with equal shares the update is the one of the mean loss
  over the global batch — equal to the one-process update when every loss term is a plain mean
  over the batch's samples (every sample labelled for every task, no class weights). What is
  *not* the same: BatchNorm statistics are computed per rank on its share (no SyncBatchNorm);
  dropout masks come from each rank's generator, seeded alike; float sums run in another order.
* Train loss and accuracy counts are summed over ranks (all-reduce) before they are logged; the
  val split is evaluated on rank 0 only and its result broadcast, so every rank selects alike.
* Rank 0 alone writes the run folder (weights, optimizer, metrics, state) and logs; every rank
  reads it on ``--resume``.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import numpy as np

TIMEOUT = timedelta(minutes=int(os.environ.get("SALFACE_DIST_TIMEOUT_MIN", "60")))
"""How long a rank waits for the others (e.g. while rank 0 evaluates val):
``$SALFACE_DIST_TIMEOUT_MIN`` minutes, default 60."""


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    try:
        return int(v) if v else default
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {v!r}") from None


@dataclass
class DistContext:
    """This process's place in a torchrun job (``world == 1``: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -------------------------------------------------------------------------------- setup
    def threads(self, threads: int | None) -> int:
        """CPU threads for this process: ``threads``, else the cores shared among this node's ranks."""
        return threads or max(1, (os.cpu_count() or 1) // self.local_world)

    def log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` on rank 0, a no-op elsewhere."""
        return log if self.is_main else (lambda *_a, **_k: None)

    def wrap(self, model, *, find_unused: bool = False):
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (which also copies
        rank 0's weights to every rank); ``model`` itself when not distributed. Forward the
        training batches through the wrapper; evaluate, save and average the inner ``model``.
        ``find_unused``: some parameters may get no gradient in a step (a head whose task has no
        label in a rank's share)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    # -------------------------------------------------------------------------------- data
    def trim(self, order: np.ndarray, batch_size: int) -> np.ndarray:
        """An epoch's sample order cut to a multiple of the world size (so every global batch
        splits evenly); raises if ``batch_size`` is not a multiple of it."""
        if not self.enabled:
            return order
        if batch_size % self.world:
            raise ValueError(f"batch size {batch_size} is not a multiple of the {self.world} "
                             "processes; it is the global batch, each process takes an equal share")
        return order[: len(order) - len(order) % self.world]

    def share(self, n: int) -> slice:
        """This rank's contiguous share of a global batch of ``n`` samples."""
        if not self.enabled:
            return slice(0, n)
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def shard(self, *arrays):
        """Each array (or ``None``) cut to this rank's share of the global batch."""
        n = len(next(a for a in arrays if a is not None))
        s = self.share(n)
        return tuple(None if a is None else a[s] for a in arrays)

    # -------------------------------------------------------------------------------- collectives
    def sum(self, *values):
        """Each value (a number, or a dict of numbers) summed over the ranks; ints stay ints."""
        if not self.enabled:
            return values
        import torch
        import torch.distributed as dist

        flat: list[float] = []
        for v in values:
            flat.extend(v.values() if isinstance(v, dict) else [v])
        t = torch.tensor(flat, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        total = iter(t.tolist())

        def back(like):
            x = next(total)
            return int(round(x)) if isinstance(like, (int, np.integer)) else x

        return tuple({k: back(x) for k, x in v.items()} if isinstance(v, dict) else back(v)
                     for v in values)

    def on_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` computed on rank 0 and sent to every rank (which wait)."""
        if not self.enabled:
            return fn(*args, **kwargs)
        import torch.distributed as dist

        box = [fn(*args, **kwargs) if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def setup_distributed(device: str = "cpu") -> DistContext:
    """The :class:`DistContext` of this process, joining torchrun's process group on first use.

    ``device``: ``"cuda"`` becomes ``cuda:LOCAL_RANK`` (one GPU per process) and selects NCCL;
    anything else trains on the CPU with Gloo. Outside torchrun: ``DistContext(device=device)``.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext(device=device)
    import torch
    import torch.distributed as dist

    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    cuda = device.startswith("cuda")
    if cuda:
        if device == "cuda":
            device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=TIMEOUT)
        atexit.register(_shutdown)
    elif dist.get_world_size() != world:
        raise RuntimeError(f"a process group of {dist.get_world_size()} is initialised, "
                           f"but $WORLD_SIZE says {world}")
    return DistContext(rank=rank, world=world, local_rank=local_rank, local_world=local_world,
                       device=device)


def _shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DistContext", "setup_distributed", "TIMEOUT"]
