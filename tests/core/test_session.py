"""The one frame loop: Session draws only what a view or a sink needs, feeds its sinks in order on its
writer thread, and reports a sink that failed without stopping the others."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from core.draw import DrawOptions
from core.io.video import Frame
from core.pipeline import STAGES, FramePipeline, PipelineConfig
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


class KeepingSink(CountingSink):
    """Keeps what each frame's faces looked like when they reached the sink."""

    def __init__(self, needs_image: bool = False) -> None:
        super().__init__()
        self.needs_image = needs_image
        self.faces: list[list] = []

    def write(self, processed) -> None:
        self.faces.append([(f.track_id, f.pose, f.state) for f in processed.result.faces])


def same_faces(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        i == j and s == t and (p is None) == (q is None)
        and (p is None or all(np.array_equal(getattr(p, k), getattr(q, k)) for k in vars(p)))
        for (i, p, s), (j, q, t) in zip(a, b))


def test_csv_only_faces_are_described_on_the_writer_thread_as_they_would_be_in_line(bundled_model, clip_frames) -> None:
    """Without a view or a video sink, pose and face state are worked out on the writer thread (while
    the model runs on the next frame); the sinks get exactly what describing each frame at once gives,
    also across a switch to a sink that needs the picture, whose frames are described at once again
    only after the frames still behind (the blink detector follows frames in order)."""
    inline = FramePipeline(bundled_model, PipelineConfig(detector="haar"))
    expected = [[(f.track_id, f.pose, f.state) for f in inline.process(frame, i / 30).faces]
                for i, frame in enumerate(clip_frames)]
    session = Session(FramePipeline(bundled_model, PipelineConfig(detector="haar")), show=False)
    run = session.run_start("clip", 30.0, (640, 360))
    csv, video = KeepingSink(), KeepingSink(needs_image=True)
    session.open_sink(csv, run)
    half = len(clip_frames) // 2
    for i, frame in enumerate(clip_frames):
        if i == half:
            session.open_sink(video, run)
        session.process(Frame(i, i / 30, frame.copy()))
    session.close_sinks()
    session.close()
    assert all(faces and faces[0][1] is not None and faces[0][2] is not None for faces in csv.faces)
    assert all(same_faces(a, b) for a, b in zip(csv.faces, expected)) and len(csv.faces) == len(expected)
    assert all(same_faces(a, b) for a, b in zip(video.faces, expected[half:])) and len(video.faces) == half
    assert set(session.stage_seconds) == set(STAGES) and session.stage_seconds["pose"] > 0
