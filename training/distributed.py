"""This process's place in a ``torchrun`` job: the same training script runs alone or as one of N ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes metrics, checkpoints and the export."""
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when torchrun started us (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size())
