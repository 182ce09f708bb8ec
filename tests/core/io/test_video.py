"""Reading real files completely and at their real times: a damaged middle, a truncated end, and the
variable-frame-rate OpenFace webcam clips, made from (or being) the shared real videos."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.io.video import VideoSource
from main import main
from tests.core.io.test_streaming import Receiver

PEXELS = "pyfeat_WolfgangLanger_Pexels.mp4"  # 472 frames, H.264 with B-frames, the count stated in the MP4
PEXELS_FRAMES = 472
VFR_CLIPS = ("openface_default.wmv", "openface_change_lighting.wmv")  # 63–80 ms between frames
DAMAGE_BYTES = 200_000


@pytest.fixture(scope="module")
def pexels(shared_data: Path) -> Path:
    return shared_data / "video" / PEXELS


@pytest.fixture(scope="module")
def damaged(pexels: Path, tmp_path_factory) -> Path:
    """The Pexels clip with 200 KB at its middle overwritten by zeros (the issue's reproduction)."""
    path = tmp_path_factory.mktemp("damaged") / "damaged.mp4"
    shutil.copy(pexels, path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2 - DAMAGE_BYTES // 2)
        f.write(b"\0" * DAMAGE_BYTES)
    return path


@pytest.fixture(scope="module")
def truncated(pexels: Path, tmp_path_factory) -> Path:
    """The first 10 % of the Pexels clip's bytes: its header still declares 472 frames."""
    path = tmp_path_factory.mktemp("truncated") / "truncated.mp4"
    data = pexels.read_bytes()
    path.write_bytes(data[:len(data) // 10])
    return path


def pristine_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = {}
    for i in range(max(indices) + 1):
        ok, image = capture.read()
        assert ok
        if i in indices:
            frames[i] = image
    capture.release()
    return frames


def presentation_times(path: Path) -> list[float]:
    """Every decoded frame's PTS in seconds, from PyAV (the reference the CSV must match)."""
    with av.open(str(path)) as container:
        return [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]


@pytest.mark.slow
def test_a_damaged_middle_is_read_past_and_every_frame_keeps_its_place(damaged: Path, pexels: Path) -> None:
    """Before: 10 failed reads in a row ended the file at frame 226, exit 0. Now reading goes on to the
    declared end; the frames after the damage are there, at their own indices (checked against the
    undamaged clip's pictures), and the missing ones are counted exactly."""
    with VideoSource(str(damaged)) as video:
        frames = {frame.index: frame.image for frame in video}
        report = video.report()
    assert report.declared == PEXELS_FRAMES and report.last_index == PEXELS_FRAMES - 1
    assert not report.stopped_early
    assert len(frames) == report.read and report.missing == PEXELS_FRAMES - report.read > 0
    after = [i for i in frames if i > 300]
    assert len(after) == PEXELS_FRAMES - 301, "every frame past the damaged stretch is read"
    probe = {250 if 250 in frames else min(after), 300 + 1, 400, PEXELS_FRAMES - 1} & set(frames)
    reference = pristine_frames(pexels, probe)
    for index in probe:
        assert np.abs(frames[index].astype(int) - reference[index]).mean() < 2, f"frame {index} is misplaced"
    line = report.line()
    assert line is not None and f"{report.read} frames read, {report.missing} missing" in line


def test_a_truncated_file_says_where_it_stopped(truncated: Path) -> None:
    with VideoSource(str(truncated)) as video:
        indices = [frame.index for frame in video]
        report = video.report()
    assert indices == sorted(set(indices)) and 0 < len(indices) < PEXELS_FRAMES // 5
    assert report.stopped_early and report.last_index == indices[-1]
    assert report.missing == PEXELS_FRAMES - len(indices)
    assert f"stopped at frame {indices[-1] + 1} of {PEXELS_FRAMES}" in report.line()


@pytest.mark.slow
def test_headless_on_a_truncated_file_warns_and_records_it_in_the_sidecar(truncated: Path, tmp_path: Path,
                                                                         capsys) -> None:
    out = tmp_path / "t.csv"
    assert main(["--source", str(truncated), "--headless", "--landmarks", str(out)]) == 0
    printed = capsys.readouterr().out
    frames = sorted({int(row["frame"]) for row in csv.DictReader(out.open(encoding="utf-8"))})
    read = len(frames)
    assert f"warning: incomplete source: stopped at frame {frames[-1] + 1} of {PEXELS_FRAMES}" in printed
    recording = json.loads(out.with_suffix(".json").read_text())["recording"]
    assert recording["frames_declared"] == PEXELS_FRAMES and recording["frames_read"] == read
    assert recording["stopped_early"] is True and recording["frames_missing"] == PEXELS_FRAMES - read
    assert "presentation time" in recording["timestamps"]


def test_a_complete_file_has_no_warning(shared_data: Path) -> None:
    with VideoSource(str(shared_data / "video" / "pyfeat_single_face.mp4")) as video:
        indices = [frame.index for frame in video]
        report = video.report()
    assert indices == list(range(72)) and report.missing == 0 and report.line() is None


@pytest.mark.parametrize("clip", VFR_CLIPS)
def test_file_timestamps_are_the_presentation_times(shared_data: Path, clip: str) -> None:
    """Before: index / fps, off by up to 24 ms on these clips. Now each frame's timestamp is its PTS
    (PyAV's, the reference) within 1 ms; frames stay one per decoded frame, numbered 0, 1, 2, ...
    The clips' container states no frame count, so OpenCV's estimate (90 for 88 frames) does not
    make a complete read look incomplete."""
    path = shared_data / "video" / clip
    reference = presentation_times(path)
    with VideoSource(str(path)) as video:
        frames = [(frame.index, frame.timestamp) for frame in video]
        report = video.report()
    assert [i for i, _ in frames] == list(range(len(reference)))
    assert max(abs(t - pts) for (_, t), pts in zip(frames, reference)) < 1e-3
    assert max(abs(i / video.info.fps - (pts - reference[0])) for i, pts in enumerate(reference)) > 0.01, \
        "the clip really is variable-rate (else this test proves nothing)"
    assert report.declared is None and report.missing == 0 and report.line() is None


@pytest.mark.slow
def test_csv_and_osc_carry_the_presentation_times(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "video" / "openface_change_lighting.wmv"
    reference = presentation_times(path)
    out = tmp_path / "vfr.csv"
    receiver = Receiver()
    try:
        assert main(["--source", str(path), "--headless", "--landmarks", str(out),
                     "--stream", f"127.0.0.1:{receiver.port}"]) == 0
        sent = receiver.wait_for("/anchorface/frame", len(reference))
    finally:
        receiver.close()
    rows = {int(row["frame"]): float(row["timestamp"]) for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert sorted(rows) == list(range(len(reference)))
    assert max(abs(rows[i] - pts) for i, pts in enumerate(reference)) < 1e-3
    assert sent and max(abs(stamp - reference[index]) for index, stamp, _ in sent) < 1e-3
