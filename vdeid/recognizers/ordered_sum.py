"""Sums that add their terms one after another, in float32, on any device.

dlib's shape predictor adds its trees' leaves one at a time, and its cascade
amplifies the last bit: summed in parallel (a tree reduction, as
``Tensor.sum`` does), 3.7 % of start boxes ended more than 1 % of their side
away from dlib's landmarks. So the port sums in dlib's order: on the CPU with
numpy's running sum, on a CUDA device with one Triton kernel when Triton is
installed (it comes with torch's Linux CUDA wheels), and otherwise with one
small kernel per term (about 7,500 launches per predictor call, which cost
the attack most of its GPU time; docs/performance.md).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch

__all__ = ["add_in_order"]

logger = logging.getLogger(__name__)

_BLOCK = 128


def add_in_order(start: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
    """``start + terms[:, 0] + terms[:, 1] + ...``, each addition rounded to float32 in turn.

    Parameters
    ----------
    start : Tensor of shape (n, K)
        float32.
    terms : Tensor of shape (n, T, K)
        float32, on ``start``'s device.

    Returns
    -------
    Tensor of shape (n, K)
        float32, on ``start``'s device; bit for bit what adding the T terms
        one after another gives.
    """
    if start.device.type == "cpu":
        both = np.concatenate([start[:, None].numpy(), terms.numpy()], axis=1)
        return torch.from_numpy(np.cumsum(both, axis=1, dtype=np.float32)[:, -1])
    if start.device.type == "cuda" and not _failed and _kernel() is not None:
        try:
            return _add_with_kernel(start, terms)
        except Exception as ex:  # noqa: BLE001 - whatever Triton raises, the slow path gives the same sum
            _failed.append(ex)
            logger.warning("Triton kernel failed (%s); summing one kernel per term from now on", ex)
    return _add_one_by_one(start, terms)


def _add_one_by_one(start: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
    total = start.clone()
    for term in terms.unbind(dim=1):
        total += term
    return total


def _add_with_kernel(start: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
    start, terms = start.float().contiguous(), terms.float().contiguous()
    out = torch.empty_like(start)
    k = start.shape[1]
    if out.numel():
        grid = ((out.numel() + _BLOCK - 1) // _BLOCK,)
        _kernel()[grid](start, terms, out, out.numel(), n_cols=k, n_terms=terms.shape[1], BLOCK=_BLOCK)
    return out


#: The exception of a Triton kernel that failed once (then it is not tried again).
_failed: list[Exception] = []


@functools.lru_cache(maxsize=1)
def _kernel():
    """The Triton kernel (compiled on its first launch); None without Triton."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        logger.info("Triton is not installed: summing one kernel per term")
        return None

    # The sizes are compile-time constants: one predictor has one tree count and one shape size.
    @triton.jit
    def sum_in_order(
        start_ptr, terms_ptr, out_ptr, n_elems, n_cols: tl.constexpr, n_terms: tl.constexpr, BLOCK: tl.constexpr
    ):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n_elems
        # The running sum's dependency keeps the additions in order (no reassociation without fast-math).
        acc = tl.load(start_ptr + offs, mask=mask, other=0.0)
        base = (offs // n_cols) * (n_terms * n_cols) + offs % n_cols
        for t in range(n_terms):
            acc += tl.load(terms_ptr + base + t * n_cols, mask=mask, other=0.0)
        tl.store(out_ptr + offs, acc, mask=mask)

    return sum_in_order
