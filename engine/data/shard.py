"""This process's share of every global batch under data-parallel training.

Every rank reads the same global batch order (engine.data.loader.EpochOrder) and keeps its
slice of each batch; engine.train.distributed says which slice when it joins the process
group and takes it back when it leaves. A single process keeps every index.
"""
from __future__ import annotations

_rank, _world = 0, 1


def set_share(rank: int, world: int) -> None:
    """Keep rows rank, rank + world, rank + 2·world, ... of every batch from now on."""
    global _rank, _world
    _rank, _world = int(rank), int(world)


def shard(indices):
    """This rank's slice of a global batch's indices (all of them when not distributed)."""
    if _world == 1:
        return indices
    return indices[_rank::_world]
