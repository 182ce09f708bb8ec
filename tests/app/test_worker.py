"""The window's processing worker on a real capture thread: a recording plays for as long as it lasted
(frames dropped by a slow machine leave no gap in time) and has the headless sidecar's keys."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

from app.capture import CaptureThread, SourceSpec
from app.worker import ProcessingWorker
from core.draw import DrawOptions
from core.headless import process_video
from core.io.video import Frame, SourceInfo
from core.pipeline import FramePipeline, PipelineConfig
from core.run_options import OutputPaths, RunOptions


def outputs(folder: Path) -> OutputPaths:
    return OutputPaths(folder / "s.csv", folder / "s.json", folder / "s.mp4")


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


@pytest.mark.slow
def test_a_window_recording_plays_for_as_long_as_it_lasted_and_has_the_headless_sidecar_keys(
        qtbot, bundled_model, clip_frames, single_face_clip: Path, tmp_path: Path) -> None:
    worker = ProcessingWorker(FramePipeline(bundled_model, PipelineConfig(detector="haar")), DrawOptions())
    camera = StandInCamera(list(clip_frames), lambda: worker._recording is not None and worker._recording.sink.frames > 0)
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
    process_video(RunOptions(str(single_face_clip), outputs(headless), max_frames=3), bundled_model,
                  progress=False)
    headless_keys = json.loads((headless / "s.json").read_text())
    assert set(window_keys) == set(headless_keys)
    assert set(window_keys["recording"]) == set(headless_keys["recording"])
    assert set(window_keys["settings"]) == set(headless_keys["settings"])
