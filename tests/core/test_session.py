"""The one frame loop: Session draws only what is shown or recorded, window and headless recordings write
the same sidecar keys, a window recording plays for as long as it lasted, and the overlapping stages
keep order and report errors."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import pytest

from app.capture import CaptureThread, SourceSpec
from app.worker import ProcessingWorker
from core.draw import DrawOptions
from core.headless import process_video
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, LandmarkModel, load_model
from core.run_options import OutputPaths, RunOptions
from core.session import Session
from core.sinks import RecorderSink
from core.background import OrderedWriter, prefetch
from core.io.video import Frame, SourceInfo

CLIP = "video/pyfeat_single_face.mp4"  # 72 frames, 640x360, 30 fps
needs_model = pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(), reason="default model not built")


@pytest.fixture(scope="module")
def model() -> LandmarkModel:
    return load_model(DEFAULT_MODEL_PATH, device="cpu")


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_data / CLIP))
    images = [capture.read()[1] for _ in range(30)]
    capture.release()
    return images


def outputs(folder: Path, video: bool) -> OutputPaths:
    return OutputPaths(folder / "s.csv", folder / "s.json", folder / "s.mp4" if video else None)


@needs_model
def test_a_csv_only_session_does_not_draw_and_a_video_session_records_the_overlay(model, frames, tmp_path) -> None:
    session = Session(FramePipeline(model, PipelineConfig(detector="haar")), DrawOptions(), show=False)
    run = session.run_start("clip", 30.0, (640, 360))
    recording = RecorderSink(outputs(tmp_path, video=False))
    session.open_sink(recording, run)
    plain = frames[0].copy()
    processed = session.process(Frame(0, 0.0, plain))
    assert processed.image is None and np.array_equal(plain, frames[0])
    session.close_sink(recording)
    assert recording.frames == 1, "closing waits for the writer thread"

    session.reset()
    session.open_sink(RecorderSink(outputs(tmp_path, video=True)), run)
    processed = session.process(Frame(0, 0.0, frames[0].copy()))
    session.close_sinks()
    session.close()
    (face,) = processed.result.faces
    decoded = next(av.open(str(tmp_path / "s.mp4")).decode(video=0)).to_ndarray(format="bgr24").astype(float)
    box = face.box
    x0, y0, x1, y1 = (int(v) for v in (box.x0, box.y0, box.x1, box.y1))
    change = np.abs(decoded - frames[0])
    assert change[y0:y1, x0:x1].mean() > 4 * change[:, : max(x0 - 60, 10)].mean()  # drawn, then encoded


class StandInCamera:
    """A camera (the hardware edge) delivering 15 s of 30 fps frames with the timestamps a real one gives,
    as fast as they are asked for once ``go`` is set — except that frame 1 waits until ``first_done()``,
    so the session surely starts on frame 0 (the one-frame mailbox would otherwise keep only the newest)."""

    def __init__(self, images: list[np.ndarray], first_done: Callable[[], bool], seconds: float = 15.0,
                 fps: float = 30.0) -> None:
        self.images, self.count, self.fps = images, int(seconds * fps), fps
        self.first_done = first_done
        self.info = SourceInfo("camera 0", True, 640, 360, fps, None)
        self.is_camera = True
        self.skipped = 0
        self.go = threading.Event()
        self._next = 0

    def read(self) -> Frame | None:
        self.go.wait(10)
        if self._next >= self.count:
            return None
        i, self._next = self._next, self._next + 1
        deadline = time.monotonic() + 30
        while i == 1 and not self.first_done() and time.monotonic() < deadline:
            time.sleep(0.001)
        return Frame(i, i / self.fps, self.images[i % len(self.images)].copy())

    def release(self) -> None:
        pass


@needs_model
def test_a_window_recording_plays_for_as_long_as_it_lasted_and_has_the_headless_sidecar_keys(
        qtbot, model, frames, shared_data: Path, tmp_path: Path) -> None:
    worker = ProcessingWorker(FramePipeline(model, PipelineConfig(detector="haar")), DrawOptions())
    camera = StandInCamera(frames, lambda: worker._recording is not None and worker._recording.sink.frames > 0)
    worker.start()
    capture = CaptureThread(camera, SourceSpec(0), worker)
    try:
        worker.begin_session(capture)
        with qtbot.waitSignal(worker.recordingStarted, timeout=10_000) as started:
            worker.start_recording(tmp_path)
        with qtbot.waitSignal(worker.recordingFinished, timeout=120_000) as finished:
            camera.go.set()
    finally:
        worker.shutdown()
        worker.wait(10_000)
    video: Path = started.args[0]
    summary = finished.args[0]
    assert summary.error == "" and summary.frames < camera.count, "processing drops frames on this machine"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in container.decode(video=0)]
    assert len(times) == summary.frames
    # Each picture is shown at its frame's real time (the CSV's timestamp, from the first recorded
    # frame), not one 1/30 s step after the previous picture: the video lasts as long as the session.
    with video.with_suffix(".csv").open() as f:
        stamps = [float(line.split(",")[1]) for line in f.readlines()[1:]]
    assert times == pytest.approx([t - stamps[0] for t in stamps], abs=1e-4)
    # The first and the last frame are recorded (the mailbox keeps the newest frame when the source ends):
    # the 15 s session, 450 frames of 1/30 s, plays for 14.967 s + one frame, however many were dropped.
    assert stamps[0] == 0.0 and times[-1] == pytest.approx((camera.count - 1) / camera.fps, abs=1e-4)
    assert len(times) < 0.8 * camera.count
    window_keys = json.loads(video.with_suffix(".json").read_text())

    headless = tmp_path / "headless"
    headless.mkdir()
    process_video(RunOptions(str(shared_data / CLIP), outputs(headless, video=True), max_frames=3), model,
                  progress=False)
    headless_keys = json.loads((headless / "s.json").read_text())
    assert set(window_keys) == set(headless_keys)
    assert set(window_keys["recording"]) == set(headless_keys["recording"])
    assert set(window_keys["settings"]) == set(headless_keys["settings"])


# --- the overlapping stages ------------------------------------------------------------------------

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
