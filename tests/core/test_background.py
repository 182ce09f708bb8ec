"""core.background: read ahead and write behind on threads — order kept, errors handed to the caller,
memory bounded, and a flush that waits for what was handed over."""
from __future__ import annotations

import threading
import time

import pytest

from core.background import OrderedWriter, prefetch


def test_prefetch_keeps_order_and_stops_early() -> None:
    produced: list[int] = []

    def numbers():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetch(numbers(), depth=3)
    assert [next(stream) for _ in range(10)] == list(range(10))
    stream.close()  # joins the producer
    assert len(produced) <= 10 + 3 + 1, "never more than the queue depth ahead"


def test_closing_early_does_not_wait_for_the_producers_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """A producer blocked on the full queue is released by the close itself: with a poll of a minute,
    closing still returns at once (a --max-frames run used to wait up to one poll, 0.1 s)."""
    monkeypatch.setattr("core.background._POLL_S", 60.0)
    stream = prefetch(iter(range(100)), depth=2)
    assert next(stream) == 0
    time.sleep(0.2)  # the producer fills the queue and waits for room
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive(), "close waited for the producer's poll"


def test_prefetch_and_writer_hand_errors_to_the_caller() -> None:
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(failing()))

    written: list[int] = []

    def write(item: int) -> None:
        if item == 3:
            raise ValueError("bad frame 3")
        written.append(item)

    writer: OrderedWriter[int] = OrderedWriter(write, depth=2)
    with pytest.raises(ValueError, match="bad frame 3"):
        for i in range(100):
            writer.put(i)
        writer.close()
    writer.close(check=False)
    assert written == [0, 1, 2], "in order, and nothing after the failure"


def test_flush_waits_for_everything_handed_over_and_the_writer_goes_on() -> None:
    release = threading.Event()
    written: list[int] = []

    def write(item: int) -> None:
        release.wait(5)
        written.append(item)

    writer: OrderedWriter[int] = OrderedWriter(write, depth=4)
    for i in range(3):
        writer.put(i)
    assert written == [], "the writer is held back"
    release.set()
    writer.flush()
    assert written == [0, 1, 2]
    writer.put(3)
    writer.close()
    assert written == [0, 1, 2, 3]
