"""OSC streaming (core.io.streaming) into a real python-osc UDP server on 127.0.0.1: what arrives, in what
shape, and that a stalled sender drops frames instead of blocking the frame loop."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from core.face_state import FaceState
from core.geometry import landmark_box
from core.pose import HeadPose
from core.results import FaceResult
from core.io.streaming import OscStreamer, encode_frame, frame_messages, parse_target

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


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def make_face(track_id: int, with_pose: bool = True) -> FaceResult:
    rng = np.random.default_rng(track_id)
    points = rng.uniform(100, 300, (68, 2)).astype(np.float32)
    pose = HeadPose(10.0, -5.0, 2.5, np.zeros(3), np.array([12.0, -3.0, 600.0])) if with_pose else None
    return FaceResult(track_id, points, 0.9, landmark_box(points), pose, "ibug68",
                      uncertainty=np.linspace(0.5, 4.0, 68).astype(np.float32),
                      state=FaceState(0.31, 0.29, 0.12, eyes_closed=False, blink=True, blinks=3))


@pytest.mark.parametrize("text, expected", [("127.0.0.1:9000", ("127.0.0.1", 9000)),
                                            ("localhost:1", ("localhost", 1)), ("[::1]:7000", ("::1", 7000))])
def test_parse_target(text: str, expected: tuple[str, int]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["9000", "host:", ":9000", "host:0", "host:70000", "host:abc"])
def test_parse_target_rejects_bad_text_in_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_target(text)


def test_a_frame_arrives_whole_with_the_documented_addresses(receiver: Receiver) -> None:
    faces = [make_face(1), make_face(2, with_pose=False)]
    with OscStreamer("127.0.0.1", receiver.port) as streamer:
        assert streamer.send(7, 0.25, faces)
        frames = receiver.wait_for("/anchorface/frame", 1)
        receiver.wait_for("/anchorface/face/2/blink", 1)
    assert frames == [(7, 0.25, 2)]
    got = dict(receiver.messages)
    np.testing.assert_allclose(got["/anchorface/face/1/landmarks"], faces[0].landmarks.ravel(), rtol=1e-6)
    np.testing.assert_allclose(got["/anchorface/face/1/uncertainty"], faces[0].uncertainty, rtol=1e-6)
    np.testing.assert_allclose(got["/anchorface/face/1/pose"], [10.0, -5.0, 2.5])
    np.testing.assert_allclose(got["/anchorface/face/1/position"], [12.0, -3.0, 600.0])
    np.testing.assert_allclose(got["/anchorface/face/1/eyes"], [0.31, 0.29], rtol=1e-6)
    np.testing.assert_allclose(got["/anchorface/face/1/mouth"], [0.12], rtol=1e-6)
    assert got["/anchorface/face/1/blink"] == (1, 3, 0)
    assert got["/anchorface/face/1/confidence"] == pytest.approx((0.9,))
    assert "/anchorface/face/2/pose" not in got and "/anchorface/face/2/position" not in got
    assert streamer.sent == 1 and streamer.dropped == 0


def test_many_frames_in_order(receiver: Receiver) -> None:
    with OscStreamer.to(f"127.0.0.1:{receiver.port}", max_pending=64) as streamer:
        for k in range(20):
            streamer.send(k, k / 30, [make_face(1)])
            time.sleep(0.002)
        frames = receiver.wait_for("/anchorface/frame", 20)
    assert [f[0] for f in frames] == list(range(20))


def test_a_stalled_sender_drops_frames_and_never_blocks(receiver: Receiver) -> None:
    # Not started: nothing drains the queue, as when the sender thread cannot keep up.
    streamer = OscStreamer("127.0.0.1", receiver.port, max_pending=4)
    started = time.perf_counter()
    accepted = [streamer.send(k, k / 30, [make_face(1)]) for k in range(100)]
    elapsed = time.perf_counter() - started
    assert accepted == [True] * 4 + [False] * 96
    assert streamer.dropped == 96
    assert elapsed < 0.5, f"100 sends took {elapsed:.3f} s"
    streamer.start()  # the four queued frames go out once the sender runs
    frames = receiver.wait_for("/anchorface/frame", 4)
    streamer.close()
    assert [f[0] for f in frames] == [0, 1, 2, 3]


def test_nobody_listening_is_not_an_error() -> None:
    with OscStreamer("127.0.0.1", 9) as streamer:  # the discard port; nothing answers on localhost
        for k in range(3):
            streamer.send(k, 0.0, [make_face(1)])
    assert streamer.sent + streamer.dropped == 3


def test_one_frame_is_one_datagram_small_enough_for_udp() -> None:
    faces = [make_face(k) for k in range(1, 5)]
    assert len(encode_frame(0, 0.0, faces)) < 16_000
    assert [a for a, _ in frame_messages(0, 0.0, faces[:1])][0] == "/anchorface/frame"


def test_headless_run_streams_every_frame_and_writes_the_new_columns(receiver: Receiver, shared_data,
                                                                     tmp_path) -> None:
    import csv
    import json

    import main

    out = tmp_path / "out.csv"
    code = main.main(["--headless", "--source", str(shared_data / "video" / "pyfeat_single_face.mp4"),
                      "--landmarks", str(out), "--max-frames", "5", "--uncertainty-columns",
                      "--stream", f"127.0.0.1:{receiver.port}"])
    assert code == 0
    frames = receiver.wait_for("/anchorface/frame", 5)
    assert [f[0] for f in frames] == [0, 1, 2, 3, 4] and all(f[2] == 1 for f in frames)
    assert len(receiver.wait_for("/anchorface/face/1/uncertainty", 5)[0]) == 68
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    for row in rows:
        assert 300 < float(row["head_z_mm"]) < 3000  # a face a fraction of a 640-px frame: decimetres away
        assert 0.1 < float(row["eye_left"]) < 0.5 and 0.0 <= float(row["mouth"]) < 0.5
        assert all(0 < float(row[f"u{i}"]) < 50 for i in range(68))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert "focal_length_px" in sidecar["camera_model"]


def test_headless_rejects_a_bad_stream_target_in_one_line(shared_data, tmp_path, capsys) -> None:
    import main

    code = main.main(["--headless", "--source", str(shared_data / "video" / "pyfeat_single_face.mp4"),
                      "--max-frames", "2", "--stream", "localhost"])
    assert code == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_the_window_streams_when_the_setting_is_on_and_stops_when_cleared(qtbot, receiver: Receiver,
                                                                          tmp_path) -> None:
    from PyQt6.QtCore import QSettings

    from app.settings import load_settings
    from app.window import MainWindow

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(store, {"recording_folder": str(tmp_path / "rec"),
                                "stream_target": f"127.0.0.1:{receiver.port}"})
    qtbot.addWidget(window)
    window.show()
    assert window.play_demo()
    qtbot.waitUntil(lambda: len([m for m in receiver.messages if m[0] == "/anchorface/frame"]) >= 3, timeout=30_000)
    window.apply_settings(replace(window.settings, stream_target=""))
    assert load_settings(store)[0].stream_target == ""  # persisted as off
    qtbot.wait(500)  # the worker applies the change between frames
    before = len(receiver.messages)
    qtbot.wait(500)
    assert len(receiver.messages) == before
