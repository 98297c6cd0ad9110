"""Background stages: order, bounded queues, errors crossing threads."""

from __future__ import annotations

import threading
import time

import pytest

from vdeid.concurrency import BackgroundConsumer, prefetch, timed


def test_prefetch_keeps_order_and_bounds_memory():
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    gen = prefetch(items(), size=3)
    assert next(gen) == 0
    time.sleep(0.2)
    # one handed out, at most 3 queued, one blocked in put()
    assert len(produced) <= 5
    assert [0, *gen] == list(range(50))


def test_prefetch_reraises_producer_error():
    def items():
        yield 1
        raise ValueError("corrupt frame")

    with pytest.raises(ValueError, match="corrupt frame"):
        list(prefetch(items(), size=2))


def test_prefetch_stops_producer_when_consumer_stops():
    def items():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    gen = prefetch(items(), size=2)
    next(gen)
    gen.close()
    assert threading.active_count() == before


def test_consumer_runs_everything_in_order():
    seen = []
    with BackgroundConsumer(seen.append, size=2) as c:
        for i in range(20):
            c.submit(i)
    assert seen == list(range(20))
    assert c.busy_seconds >= 0


def test_consumer_error_surfaces_on_caller_thread():
    def consume(item):
        if item == 3:
            raise OSError("disk full")

    c = BackgroundConsumer(consume, size=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            c.submit(i)
        c.close()


def test_consumer_joins_when_caller_fails():
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with BackgroundConsumer(lambda i: (time.sleep(0.01), seen.append(i)), size=2) as c:
            for i in range(5):
                c.submit(i)
            raise KeyboardInterrupt
    assert not c._thread.is_alive()


def test_timed_accumulates():
    clock = [0.0]

    def slow():
        for i in range(3):
            time.sleep(0.01)
            yield i

    assert list(timed(slow(), clock)) == [0, 1, 2]
    assert clock[0] >= 0.03
