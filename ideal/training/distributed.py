"""The one distributed piece of training: gather embeddings from every rank, keeping their gradients.

As in open_clip's `gather_features(..., gather_with_grad=True)`: every rank ends up with the whole global
batch and computes the same loss; gradients flow back to the rank that produced each embedding (through
torch.distributed.nn.all_gather), and DDP averages the parameter gradients. Ranks may hold different
numbers of rows (each has its own unique scenes), so rows are padded to the largest count and dropped again.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn as dist_nn


def gather_with_grad(x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (x, ids) from all ranks in rank order; x keeps its gradient. Both on the training device."""
    if ids.device != x.device:  # NCCL gathers only GPU tensors; without this the error comes from inside it
        raise ValueError(f"gather_with_grad: ids are on {ids.device} but x is on {x.device}; move both to the "
                         "model's device")
    n = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, n)
    m = int(max(c.item() for c in counts))
    pad = m - x.shape[0]
    x_p = torch.cat([x, x.new_zeros((pad,) + x.shape[1:])]) if pad else x
    ids_p = torch.cat([ids, ids.new_full((pad,), -1)]) if pad else ids
    xs = dist_nn.all_gather(x_p)
    id_list = [torch.empty_like(ids_p) for _ in counts]
    dist.all_gather(id_list, ids_p)
    keep = [slice(0, int(c.item())) for c in counts]
    return torch.cat([t[k] for t, k in zip(xs, keep)]), torch.cat([t[k] for t, k in zip(id_list, keep)])
