"""Seeded, resumable data order, and a DataLoader built on it.

The order of epoch e is a pure function of (seed, e): a permutation drawn from a fresh
generator seeded with both. Resuming at (epoch, batch) therefore needs no saved RNG
state: draw the same permutation and skip the batches already seen. Per-step random
augmentation uses the same idea (`step_generator(seed, step)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from engine.data.shard import shard


@dataclass(frozen=True)
class EpochOrder:
    """Which sample indices make up each batch of each epoch."""

    n: int
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = True

    @property
    def batches_per_epoch(self) -> int:
        if self.drop_last:
            return max(1, self.n // self.batch_size)
        return -(-self.n // self.batch_size)

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([int(self.seed), int(epoch), 0x5EED]).permutation(self.n)

    def batches(self, epoch: int, start: int = 0) -> Iterator[np.ndarray]:
        """Index arrays of epoch `epoch`, from batch `start` on (a dataset smaller than one
        batch gives one short batch, so tiny datasets still train). Under data-parallel
        training each rank gets its slice of every global batch (engine.data.shard)."""
        order = self.permutation(epoch)
        bs = min(self.batch_size, self.n)
        for b in range(start, self.batches_per_epoch):
            yield shard(order[b * bs:(b + 1) * bs])  # under torchrun: this rank's slice of the global batch


def step_generator(seed: int, step: int, device: str = "cpu"):
    """A torch.Generator for the random choices of one training step (crops, flips, masks)."""
    import torch

    g = torch.Generator(device=device)
    # Mix seed and step so neighbouring (seed, step) pairs do not share streams.
    g.manual_seed(int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, np.uint64)[0]) & (2**63 - 1))
    return g


class ArrayDataset:
    """A map-style torch dataset over in-memory arrays (uint8 images, labels, anything indexable).

    `__getitems__` lets the DataLoader fetch a whole batch with one fancy index.
    """

    def __init__(self, *arrays: Sequence):
        if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
            raise ValueError("ArrayDataset needs arrays of equal length")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: int):
        return tuple(a[i] for a in self.arrays)

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices)
        return [tuple(a[idx] if isinstance(a, np.ndarray) else [a[i] for i in idx] for a in self.arrays)]


class _OrderSampler:
    """A batch sampler over EpochOrder, starting at a given batch of a given epoch."""

    def __init__(self, order: EpochOrder, epoch: int, start: int):
        self.order, self.epoch, self.start = order, epoch, start

    def __iter__(self):
        for idx in self.order.batches(self.epoch, self.start):
            yield idx.tolist()

    def __len__(self) -> int:
        return max(0, self.order.batches_per_epoch - self.start)


def _collate_arrays(batch):
    import torch

    (arrays,) = batch  # __getitems__ returned the whole batch as one element
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a for a in arrays)


def _seed_worker(worker_id: int) -> None:
    import random

    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset, batch_size: int, *, seed: int = 0, epoch: int = 0, start_batch: int = 0,
                shuffle: bool = True, drop_last: bool = True, num_workers: int = 0, collate_fn=None,
                pin_memory: bool = False):
    """A DataLoader over epoch `epoch` of `dataset`, from batch `start_batch`, in a seeded order.

    num_workers defaults to 0 (the engine thread does the work; no processes to fork from
    a GUI). Worker RNGs are seeded from a generator fixed by (seed, epoch).
    """
    import torch
    from torch.utils.data import DataLoader

    order = EpochOrder(len(dataset), batch_size, seed, shuffle, drop_last)
    g = torch.Generator()
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    if collate_fn is None and isinstance(dataset, ArrayDataset):
        collate_fn = _collate_arrays
    return DataLoader(dataset, batch_sampler=_OrderSampler(order, epoch, start_batch), num_workers=num_workers,
                      collate_fn=collate_fn, generator=g, worker_init_fn=_seed_worker if num_workers else None,
                      pin_memory=pin_memory)
