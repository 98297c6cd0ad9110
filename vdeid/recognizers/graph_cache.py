"""Replay a function of fixed-shape CUDA tensors as a captured CUDA graph.

A function made of many small kernels (dlib's shape predictor: about 1,600 a
call) costs its launches on the host, not its work on the GPU. Captured once
per input shape, a call becomes a copy of its inputs into the graph's own
buffers and one replay: the same kernels, so the same bits.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Callable

import torch

__all__ = ["GraphCache"]

logger = logging.getLogger(__name__)


class GraphCache:
    """``fn(*inputs)`` on CUDA tensors, replayed from a graph captured per input shape.

    Parameters
    ----------
    fn : callable
        ``fn(*tensors) -> Tensor``: a pure function of its inputs' values
        (no host synchronisation, no data-dependent shapes), as CUDA graphs
        require.
    max_graphs : int
        Graphs kept, least recently used dropped first; each holds its
        inputs, its output and its intermediates. (Default: 32)

    Notes
    -----
    A shape's first call runs ``fn`` as it is (a shape seen once is not worth
    a capture, which costs about two plain calls); its second call captures
    it, and later calls replay the graph. Capture is thread-local, so other
    threads (the pipeline's detector) keep using the GPU meanwhile: in CUDA's
    default global mode their synchronising calls failed and invalidated the
    capture. If a capture fails the cache logs a warning and calls ``fn`` as
    it is from then on. The output is a copy, so a later replay does not
    overwrite it.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], *, max_graphs: int = 32):
        self.fn = fn
        self.max_graphs = int(max_graphs)
        self.enabled = True
        self._graphs: OrderedDict[tuple, tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, ...], torch.Tensor]] = (
            OrderedDict()
        )
        self._seen: OrderedDict[tuple, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._graphs)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if not self.enabled or inputs[0].device.type != "cuda":
            return self.fn(*inputs)
        key = tuple((x.shape, x.dtype, x.device) for x in inputs)
        entry = self._graphs.get(key)
        if entry is None:
            if key not in self._seen:
                _remember(self._seen, key, 4 * self.max_graphs)
                return self.fn(*inputs)
            try:
                entry = self._capture(inputs)
            except Exception as ex:  # noqa: BLE001 - any capture failure: run the kernels one by one
                self.enabled = False
                self._graphs.clear()
                logger.warning("CUDA graph capture failed (%s); launching the kernels one by one", ex)
                return self.fn(*inputs)
            _remember(self._graphs, key, self.max_graphs, entry)
        else:
            self._graphs.move_to_end(key)
        graph, static, out = entry
        for dst, src in zip(static, inputs):
            dst.copy_(src, non_blocking=True)
        graph.replay()
        return out.clone()

    def _capture(self, inputs: tuple[torch.Tensor, ...]):
        # fn has run on this shape already (its first call), so no warm-up is needed.
        static = tuple(x.clone() for x in inputs)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            out = self.fn(*static)
        return graph, static, out


def _remember(cache: OrderedDict, key: tuple, limit: int, value=None) -> None:
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)
