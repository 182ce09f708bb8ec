"""OSC streaming (core.io.streaming) into a real python-osc UDP server on 127.0.0.1: what arrives, in what
shape, and that a stalled sender drops frames instead of blocking the frame loop."""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.face_state import FaceState
from core.geometry import landmark_box
from core.pose import HeadPose
from core.results import FaceResult
from core.io.streaming import OscStreamer, encode_frame, frame_messages, parse_target
from tests.helpers_outputs import Receiver


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
