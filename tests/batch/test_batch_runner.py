"""The local engine's bookkeeping: thread shares and a pool whose process died."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from vdeid.batch.runner import WORKER_DIED, _drain, threads_per_worker
from vdeid.batch.walk import Item


def test_threads_per_worker_shares_the_cores():
    assert threads_per_worker(1, 8) == 8
    assert threads_per_worker(3, 8) == 2
    assert threads_per_worker(16, 8) == 1


def _item(name):
    return Item("photo", Path("/in") / name, name, Path("/out") / name, name)


class _DyingPool:
    """Answers the first file, then its process 'dies' while the next two are in flight."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn, item, overwrite):
        self.submitted.append(item.rel)
        future = Future()
        if len(self.submitted) == 1:
            future.set_result({"status": "ok"})
        elif len(self.submitted) <= 3:
            future.set_exception(BrokenProcessPool("a process died"))
        else:
            raise BrokenProcessPool("pool is broken")
        return future


def test_broken_pool_fails_files_in_flight_and_keeps_the_rest():
    tasks = deque((_item(f"p{i}.png"), False) for i in range(5))
    seen = {}
    _drain(_DyingPool(), tasks, lambda item, record: seen.update({item.rel: record}), limit=3)
    assert seen["p0.png"]["status"] == "ok"
    assert sorted(seen) == ["p0.png", "p1.png", "p2.png"]
    for rel in ("p1.png", "p2.png"):
        assert seen[rel]["status"] == "failed" and WORKER_DIED in seen[rel]["error"]
    # What was not handed out stays queued for a fresh pool.
    assert [item.rel for item, _ in tasks] == ["p3.png", "p4.png"]


class _BrokenPool:
    def submit(self, *args):
        raise BrokenProcessPool("pool is broken")


def test_pool_broken_before_any_file_returns_to_start_a_new_one():
    tasks = deque([(_item("p0.png"), False)])
    _drain(_BrokenPool(), tasks, lambda item, record: None, limit=2)
    assert len(tasks) == 1
