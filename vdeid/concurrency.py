"""Overlap pipeline stages with background threads and bounded queues.

Decoding and encoding (libav, which releases the GIL while it works) run on
their own threads, and so do detection with tracking, so the attacks are not
idle while frames are decoded, their faces found, or the results encoded. Queues are bounded: memory holds at most ``size`` items
per stage however long the video is.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterable[T], *, size: int, name: str = "prefetch") -> Iterator[T]:
    """Yield ``items`` while a background thread produces the next ones.

    Parameters
    ----------
    items : iterable
        The producer; it is iterated on the background thread only.
    size : int
        At most this many produced items wait in memory.
    name : str
        Thread name (shows in profilers).

    Notes
    -----
    An exception in the producer is re-raised in the consumer. If the
    consumer stops early (error, Ctrl-C, ``break``), the producer thread is
    told to stop and is joined.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundConsumer:
    """Run ``consume(item)`` for every submitted item on a background thread.

    ``submit`` blocks when ``size`` items are waiting. An exception raised by
    ``consume`` is re-raised by the next ``submit`` or by ``close``.
    ``busy_seconds`` accumulates the time spent inside ``consume``.
    """

    def __init__(self, consume: Callable[[T], None], *, size: int, name: str = "consumer"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._error: BaseException | None = None
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is not None:
                continue  # drain without work so submit() never blocks forever
            start = time.perf_counter()
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 -- re-raised on the caller's thread
                self._error = exc
            self.busy_seconds += time.perf_counter() - start

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: T) -> None:
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every submitted item; re-raise a failure."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._raise()

    def __enter__(self) -> "BackgroundConsumer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller is failing: skip queued work, but join before the
        # resource being written to is torn down.
        if self._error is None:
            self._error = exc
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()


def timed(items: Iterable[T], clock: list) -> Iterator[T]:
    """Yield ``items``, adding the seconds spent producing them to ``clock[0]``.

    For stages that run on another thread, where :class:`StageTimer`'s
    single-thread stack does not apply.
    """
    it = iter(items)
    while True:
        start = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            clock[0] += time.perf_counter() - start
        yield item
