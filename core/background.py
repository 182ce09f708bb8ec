"""Work behind the frame loop on background threads — read ahead, write behind — with bounded queues
that keep order and errors (not to be confused with the pipeline's timing labels, ``STAGES``).

Decoding a frame, running the model and encoding the video are independent enough to run at the same
time (OpenCV's decoder, ONNX Runtime and x264 all release the GIL). :func:`prefetch` reads ahead on one
thread, :class:`OrderedWriter` writes behind on another; each holds at most ``depth`` items, so memory
stays bounded and a slow stage slows the others instead of queueing without end. Items keep their
order (one producer, one consumer, FIFO), and an exception in a stage reaches the main thread.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 4, name: str = "prefetch") -> Iterator[T]:
    """Yield ``items`` in order while a background thread produces up to ``depth`` of them ahead.

    Closing the generator early (``break`` in the loop) stops the producer and waits for it, so the
    source can be released safely afterwards. The queue is emptied first: a producer waiting for room
    would otherwise notice the stop only at its next poll (a tenth of a second more on every
    ``--max-frames`` run).
    """
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=_POLL_S)
                return not stop.is_set()  # stopped while waiting for room: read no further
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it in its own thread
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        _drain(pending)  # a producer blocked on the full queue returns at once, not after its poll
        thread.join()


def _drain(pending: queue.Queue) -> None:
    """Empty ``pending`` without waiting."""
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return


class OrderedWriter(Generic[T]):
    """Calls ``write(item)`` on a background thread, in submission order, at most ``depth`` items behind.

    The first exception ``write`` raises is re-raised by the next :meth:`put` or by :meth:`close`;
    nothing is written after it.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 4, name: str = "writer") -> None:
        self._write = write
        self._pending: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._pending.get()) is not _END:
            try:
                if self._error is None:
                    self._write(item)
            except BaseException as exc:  # re-raised in the submitting thread
                self._error = exc
            finally:
                self._pending.task_done()

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._pending.put(item)

    def flush(self) -> None:
        """Wait until everything submitted so far is written (the thread keeps running); re-raise a
        write error."""
        if self._thread.is_alive():
            self._pending.join()
        if self._error is not None:
            raise self._error

    def close(self, check: bool = True) -> None:
        """Wait until everything submitted is written; re-raise a write error if ``check``. Idempotent."""
        if self._thread.is_alive():
            self._pending.put(_END)
            self._thread.join()
        if check and self._error is not None:
            raise self._error
