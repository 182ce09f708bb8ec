"""The headless runner end to end on the real clips: outputs, ids, landmarks on the face, and every
user-caused failure as one clear line with the right exit code."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.detection import HaarDetector
from core.geometry import Box
from core.runtime import DEFAULT_MODEL_PATH
from core.table import LandmarkTable
from main import main
from tests.conftest import REPO_ROOT

needs_model = pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(),
                                 reason=f"default model {DEFAULT_MODEL_PATH} not built yet")


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@needs_model
def test_headless_run_writes_video_and_landmarks_on_the_face(shared_data: Path, tmp_path: Path, capsys) -> None:
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    out = tmp_path / "out.mp4"
    assert main(["--source", str(clip), "--headless", "--output", str(out), "--landmarks", str(tmp_path / "out.csv")]) == 0
    printed = capsys.readouterr().out
    assert "frames: 72" in printed and "provider: CPU" in printed
    assert count_frames(out) == count_frames(clip) == 72
    rows = read_rows(tmp_path / "out.csv")
    assert len(rows) == 72, "one face per frame in this clip"
    assert {r["track_id"] for r in rows} == {"1"}, "the tracker keeps one id through the clip"
    assert [int(r["frame"]) for r in rows] == list(range(72))
    # Landmarks lie on the face: inside an independent detector's face box (grown a little, since a
    # face box excludes the chin/jaw edge) on sampled frames.
    capture = cv2.VideoCapture(str(clip))
    detector = HaarDetector()
    checked = 0
    for index in range(72):
        ok, frame = capture.read()
        if index % 12:
            continue
        faces = detector.detect(frame)
        if not faces:
            continue
        box = max(faces, key=lambda d: d.box.width).box
        cx, cy = box.center
        grown = Box(cx - 0.8 * box.width, cy - 0.8 * box.height, cx + 0.8 * box.width, cy + 0.9 * box.height)
        row = rows[index]
        points = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(68)])
        inside = ((points[:, 0] >= grown.x0) & (points[:, 0] <= grown.x1) &
                  (points[:, 1] >= grown.y0) & (points[:, 1] <= grown.y1))
        assert inside.mean() > 0.95, f"frame {index}: landmarks off the detected face"
        # and they are centred on it, not merely inside a generous box
        assert abs(points[:, 0].mean() - cx) < 0.25 * box.width
        checked += 1
    capture.release()
    assert checked >= 3


@needs_model
def test_invalid_model_is_one_clear_line(shared_data: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a model")
    code = main(["--source", str(shared_data / "video" / "pyfeat_single_face.mp4"), "--headless", "--model", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: invalid model") and "bad.onnx" in err[0]


def test_missing_source_and_camera(tmp_path: Path, capsys) -> None:
    assert main(["--source", str(tmp_path / "nope.mp4"), "--headless"]) == 2
    assert "video file not found" in capsys.readouterr().err
    assert main(["--source", "7", "--headless"]) == 2  # no camera on these machines: the real hardware edge
    assert "no camera at index 7" in capsys.readouterr().err


def test_unreadable_source_file(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    assert main(["--source", str(junk), "--headless"]) == 2
    assert "cannot read video file" in capsys.readouterr().err


def test_unwritable_output_folder(shared_data: Path, tmp_path: Path, capsys) -> None:
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    assert main(["--source", str(clip), "--headless", "--output", str(tmp_path / "missing" / "out.mp4")]) == 2
    assert "output folder does not exist" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions")
        assert main(["--source", str(clip), "--headless", "--output", str(locked / "out.mp4")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


@needs_model
def test_corrupt_frame_in_the_middle_is_skipped(shared_data: Path, tmp_path: Path, capsys) -> None:
    """An MJPEG file whose 10th frame's JPEG data is destroyed: processing goes on past it."""
    source = cv2.VideoCapture(str(shared_data / "video" / "pyfeat_single_face.mp4"))
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for _ in range(20):
        writer.write(source.read()[1])
    writer.release()
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) >= 20
    begin = starts[9]
    data[begin:begin + 600] = b"\x00" * 600  # wipe the JPEG header and the start of the scan
    clip.write_bytes(bytes(data))
    code = main(["--source", str(clip), "--headless", "--landmarks", str(tmp_path / "c.csv")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    frames = int(captured.out.split("frames: ")[1].split()[0])
    skipped = int(captured.out.split("skipped corrupt: ")[1].split(")")[0])
    assert frames + skipped == 20 and frames >= 19


@needs_model
def test_killed_headless_recording_keeps_what_was_written(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed.mp4"
    clip = shared_data / "video" / "pyfeat_WolfgangLanger_Pexels.mp4"
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), "--source", str(clip), "--headless",
                             "--output", str(out)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path = out.with_suffix(".csv")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not csv_path.exists() or len(read_rows(csv_path)) < 60):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = read_rows(csv_path)
    assert len(rows) >= 60, "every flushed row survives the kill"
    assert all(len(r) == len(LandmarkTable(68).columns) and None not in r.values() for r in rows[:-1])
    frames = count_frames(out)
    # Fragments are cut at least every second (24 fps clip): at most ~2 s of video may be lost.
    assert frames >= len(rows) - 48
