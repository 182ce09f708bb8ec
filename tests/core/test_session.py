"""The one frame loop: Session draws only what a view or a sink needs, feeds its sinks in order on its
writer thread, and reports a sink that failed without stopping the others."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from core.draw import DrawOptions
from core.io.video import Frame
from core.pipeline import FramePipeline, PipelineConfig
from core.run_options import OutputPaths
from core.session import Session
from core.sinks import RecorderSink


def outputs(folder: Path, video: bool) -> OutputPaths:
    return OutputPaths(folder / "s.csv", folder / "s.json", folder / "s.mp4" if video else None)


def test_a_csv_only_session_does_not_draw_and_a_video_session_records_the_overlay(bundled_model, clip_frames, tmp_path) -> None:
    session = Session(FramePipeline(bundled_model, PipelineConfig(detector="haar")), DrawOptions(), show=False)
    run = session.run_start("clip", 30.0, (640, 360))
    recording = RecorderSink(outputs(tmp_path, video=False))
    session.open_sink(recording, run)
    plain = clip_frames[0].copy()
    processed = session.process(Frame(0, 0.0, plain))
    assert processed.image is None and np.array_equal(plain, clip_frames[0])
    session.close_sink(recording)
    assert recording.frames == 1, "closing waits for the writer thread"

    session.reset()
    session.open_sink(RecorderSink(outputs(tmp_path, video=True)), run)
    processed = session.process(Frame(0, 0.0, clip_frames[0].copy()))
    session.close_sinks()
    session.close()
    (face,) = processed.result.faces
    decoded = next(av.open(str(tmp_path / "s.mp4")).decode(video=0)).to_ndarray(format="bgr24").astype(float)
    box = face.box
    x0, y0, x1, y1 = (int(v) for v in (box.x0, box.y0, box.x1, box.y1))
    change = np.abs(decoded - clip_frames[0])
    assert change[y0:y1, x0:x1].mean() > 4 * change[:, : max(x0 - 60, 10)].mean()  # drawn, then encoded


class FailingSink:
    """A sink whose every write fails (a disk that went away), to see it reported and the others fed."""

    needs_image = False

    def __init__(self) -> None:
        self.closed_with: dict | None = None

    def open(self, run) -> None:
        pass

    def write(self, processed) -> None:
        raise OSError("disk gone")

    def close(self, summary) -> None:
        self.closed_with = dict(summary)


class CountingSink(FailingSink):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[int] = []

    def write(self, processed) -> None:
        self.frames.append(processed.frame.index)


def test_a_failing_sink_is_reported_and_the_others_get_every_frame_in_order(bundled_model, clip_frames) -> None:
    session = Session(FramePipeline(bundled_model, PipelineConfig(detector="haar")), show=False)
    run = session.run_start("clip", 30.0, (640, 360))
    failing, counting = FailingSink(), CountingSink()
    session.open_sink(failing, run)
    session.open_sink(counting, run)
    for i in range(5):
        session.process(Frame(i, i / 30, clip_frames[i]))
    session.flush()
    sink, error = session.failure()
    assert sink is failing and isinstance(error, OSError)
    with pytest.raises(OSError, match="disk gone"):
        session.close_sink(failing)
    assert failing.closed_with == {}, "a failed sink is closed without the run's summary"
    session.close_sink(counting, {"frames_read": 5})
    assert counting.frames == [0, 1, 2, 3, 4] and counting.closed_with == {"frames_read": 5}
    assert session.failure() is None and session.sinks == []
    session.close()
