"""What every host's tests need to try each output option: a real OSC receiver, and per option
(:data:`core.run_options.SINK_OPTIONS`) the value a test sets and the check of its effect, so the
window, headless and batch tests try exactly the same thing and a new option without a case here fails
``tests/core/test_run_options.py``."""
from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from core.run_options import SINK_OPTIONS

#: The receiver thread gives up by itself after this long, whatever the test does.
RECEIVER_LIMIT_S = 60.0


class Receiver:
    """A real OSC UDP server on an ephemeral localhost port, serving from a thread until ``stop`` or
    :data:`RECEIVER_LIMIT_S`; ``messages`` collects ``(address, args)``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.server.timeout = 0.05
        self.port = self.server.server_address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + RECEIVER_LIMIT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.server.handle_request()

    def wait_for(self, address: str, count: int, timeout: float = 2.0) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [args for a, args in self.messages if a == address]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        return [args for a, args in self.messages if a == address]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(RECEIVER_LIMIT_S)
        self.server.server_close()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check_streamed(receiver: Receiver, table: Path) -> None:
    """At least every frame the CSV holds arrived as OSC, with 68 landmarks per face."""
    frames = len({row["frame"] for row in csv_rows(table)})
    assert frames > 0
    assert len(receiver.wait_for("/anchorface/frame", frames, timeout=10.0)) >= frames
    landmarks = [args for address, args in list(receiver.messages) if address.endswith("/landmarks")]
    assert landmarks and all(len(args) == 136 for args in landmarks)


def check_uncertainty_columns(receiver: Receiver, table: Path) -> None:
    """The CSV ends in u0 … u67, each a positive pixel spread on every row with a face."""
    rows = csv_rows(table)
    faces = [row for row in rows if row["success"] == "1"]
    assert faces and list(rows[0])[-68:] == [f"u{i}" for i in range(68)]
    assert all(0 < float(row[f"u{i}"]) < 50 for row in faces for i in range(68))


@dataclass(frozen=True)
class OutputCase:
    """How a test turns an output option on (``value``, given the receiver) and sees that it worked."""

    value: Callable[[Receiver], Any]
    check: Callable[[Receiver, Path], None]


OUTPUT_CASES: dict[str, OutputCase] = {
    "stream": OutputCase(lambda receiver: f"127.0.0.1:{receiver.port}", check_streamed),
    "uncertainty_columns": OutputCase(lambda receiver: True, check_uncertainty_columns),
}


def option_argv(key: str, receiver: Receiver) -> list[str]:
    """The command-line words that turn output option ``key`` on (the same for headless and batch)."""
    option = next(o for o in SINK_OPTIONS if o.key == key)
    value = OUTPUT_CASES[key].value(receiver)
    return [option.flag] if option.is_switch else [option.flag, str(value)]
