"""Data-parallel training under `torchrun --nproc_per_node=N` (gloo on CPU, NCCL on CUDA).

Every rank builds the same model from the same seed, reads the same global batch order
(engine.data.loader.EpochOrder) and keeps its own slice of each batch. After backward
the gradients are averaged across ranks, so N ranks with batch B/N each take exactly the
step one process takes with batch B: runs stay resumable and comparable across N. Losses
whose negatives are the batch (CLIP/LiT, SimCLR, MoCo v3) gather every rank's rows so they see
the same negatives; queues (MoCo v2, ALBEF) and the memory bank take every rank's keys. BN
layers still normalise per rank (no SyncBN), so BN backbones match one process only closely.
Only rank 0 evaluates and writes checkpoints, cards and metrics.

We average gradients ourselves (bucketed all-reduce) rather than wrap the model in
DistributedDataParallel: recipes reach into their modules (momentum encoders, MAE's
patchify), and the wrapper would hide those attributes and rename every state-dict key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from engine.data import shard
from engine.errors import TrainingError

BUCKET_BYTES = 25 * 2**20  # gradients are all-reduced in flat buckets of about this size


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current: Dist | None = None


def requested() -> bool:
    """True when launched by torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's rank as the launcher set it (0 without a launcher); usable before init."""
    return int(os.environ.get("RANK", "0"))


def current() -> Dist | None:
    return _current


def init(device: str) -> tuple[Dist | None, str]:
    """Join the process group if launched by torchrun: (Dist or None, the device to use)."""
    global _current
    if not requested():
        return None, device
    import torch
    import torch.distributed as tdist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{local_rank}"  # one GPU per process
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend)
    _current = Dist(tdist.get_rank(), tdist.get_world_size(), local_rank, backend)
    shard.set_share(_current.rank, _current.world)  # the data loader's slice of every batch
    return _current, device


def shutdown() -> None:
    global _current
    if _current is not None:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()
        _current = None
        shard.set_share(0, 1)


def check_batch(batch_size: int) -> None:
    if _current is not None and batch_size % _current.world:
        raise TrainingError(f"batch_size {batch_size} does not split evenly over {_current.world} processes; "
                            f"choose a multiple of {_current.world}")


def broadcast_modules(modules: dict) -> None:
    """Rank 0's parameters and buffers everywhere (seeds already agree; this makes it certain)."""
    if _current is None:
        return
    import torch.distributed as tdist

    for module in modules.values():
        for t in list(module.parameters()) + list(module.buffers()):
            tdist.broadcast(t.data, src=0)


def average_gradients(params) -> None:
    """All-reduce the gradients in flat buckets and divide by the world size."""
    if _current is None:
        return
    import torch
    import torch.distributed as tdist

    grads = [p.grad for p in params if p.grad is not None]
    bucket, size = [], 0
    for g in grads + [None]:
        if g is not None:
            bucket.append(g)
            size += g.numel() * g.element_size()
        if bucket and (g is None or size >= BUCKET_BYTES):
            flat = torch.cat([b.reshape(-1) for b in bucket])
            tdist.all_reduce(flat)
            flat /= _current.world
            offset = 0
            for b in bucket:
                n = b.numel()
                b.copy_(flat[offset:offset + n].view_as(b))
                offset += n
            bucket, size = [], 0


def mean_scalar(value: float, device: str) -> float:
    """The mean of a float over ranks (the loss every rank logs and checks for NaN)."""
    if _current is None:
        return value
    import torch
    import torch.distributed as tdist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return float(t.item()) / _current.world


def all_gather_concat(tensor):
    """Concatenate a tensor's rows from every rank in rank order (MoCo's keys for the queue).

    No gradient flows through the gathered copy, as in MoCo's concat_all_gather.
    """
    if _current is None:
        return tensor
    import torch
    import torch.distributed as tdist

    parts = [torch.empty_like(tensor) for _ in range(_current.world)]
    tdist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather_with_grad(tensor):
    """Every rank's rows in rank order, with the gradient flowing back to each rank's own rows.

    For losses whose negatives are the whole batch (CLIP, SimCLR): each rank scores its own rows
    against all B; the backward sums, over ranks, the gradient every rank's loss sends to these
    rows. With average_gradients dividing by the world size, N ranks then take exactly the
    step of one process on the full batch. (torch.distributed.nn's all_gather needs
    reduce_scatter or all_to_all in its backward, which gloo lacks; an all-reduce works on both.)
    """
    if _current is None:
        return tensor
    return _GatherWithGrad.apply(tensor)


def row_offset(n_local: int) -> int:
    """Where this rank's rows start in a gathered batch of n_local rows per rank."""
    return 0 if _current is None else _current.rank * n_local


def _gather_function():
    import torch
    import torch.distributed as tdist

    class GatherWithGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, tensor):
            parts = [torch.empty_like(tensor) for _ in range(_current.world)]
            tdist.all_gather(parts, tensor.contiguous())
            ctx.rows = tensor.shape[0]
            return torch.cat(parts, dim=0)

        @staticmethod
        def backward(ctx, grad):
            grad = grad.contiguous().clone()
            tdist.all_reduce(grad)
            start = _current.rank * ctx.rows
            return grad[start:start + ctx.rows]

    return GatherWithGrad


class _Lazy:
    """Builds the autograd Function on first use, so importing this module never imports torch."""

    _fn = None

    def apply(self, tensor):
        if _Lazy._fn is None:
            _Lazy._fn = _gather_function()
        return _Lazy._fn.apply(tensor)


_GatherWithGrad = _Lazy()
