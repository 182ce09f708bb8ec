"""Recording sink: real video in, playable video + CSV + sidecar out; survives SIGKILL and a full disk."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.geometry import landmark_box
from core.pose import angles_to_rotation, camera_matrix, estimate_pose, load_mean_face
from core.io.recorder import Recorder, RecordingError, open_for_writing
from core.results import FaceResult
from core.io.table import LandmarkTable

REPO = Path(__file__).resolve().parents[3]
VIDEO = "video/pyfeat_single_face.mp4"  # 72 frames, 640x360, 30 fps
SIZE = (640, 360)
FPS = 30.0


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def count_frames(path: Path) -> int:
    """Frames OpenCV can actually decode (the container's own count is not trusted)."""
    return len(read_frames(path))


def fake_faces(frame_index: int, count: int = 2) -> list[FaceResult]:
    """Plausible faces: the 3D mean face turning slowly, projected over the video's face (and a smaller
    second one to its right), with the pose estimated from those landmarks as the pipeline would."""
    model, k = load_mean_face(), camera_matrix(SIZE)
    faces = []
    for track_id, (x, y, z) in enumerate([(-25.0, 15.0, 820.0), (330.0, 20.0, 1400.0)][:count], start=1):
        yaw = 20.0 * np.sin(2 * np.pi * frame_index / 60.0)
        rotation = cv2.Rodrigues(angles_to_rotation(yaw, -5.0, 3.0))[0]
        pts = cv2.projectPoints(model, rotation, np.array([x, y, z]), k, None)[0][:, 0]
        faces.append(FaceResult(track_id, pts, 0.9 - 0.1 * track_id, landmark_box(pts), estimate_pose(pts, SIZE),
                                "ibug68"))
    return faces


def complete_rows(csv_path: Path) -> list[list[str]]:
    """Every newline-terminated data row (a kill may leave one partial line at the end)."""
    text = csv_path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete (or empty)
    assert lines[0].split(",") == LandmarkTable(68).columns
    return [line.split(",") for line in lines[1:]]


@pytest.fixture(scope="module")
def source_frames(shared_data) -> list[np.ndarray]:
    frames = read_frames(shared_data / VIDEO)
    assert len(frames) == 72
    return frames


# --- a normal recording ----------------------------------------------------------------------------

def test_records_the_real_video_frame_for_frame(tmp_path, source_frames):
    video, table = tmp_path / "rec.mp4", tmp_path / "rec.csv"
    meta = {"model": "anchorface-test", "provider": "CPUExecutionProvider", "settings": {"smoother": "kalman"}}
    with Recorder(video, table, FPS, SIZE, "ibug68", meta) as rec:
        started = json.loads((tmp_path / "rec.json").read_text())
        for i, frame in enumerate(source_frames):
            rec.write(i, i / FPS, frame, fake_faces(i))
    assert started["recording"]["ended"] is None and started["model"] == "anchorface-test"

    assert count_frames(video) == len(source_frames)
    rows = complete_rows(table)
    assert len(rows) == len(source_frames) * 2
    first = fake_faces(0)[0]
    assert rows[0][:7] == ["0", "0.000000", "2", "0", "1", "1", f"{first.confidence:.4f}"]
    assert float(rows[0][7]) == pytest.approx(first.pose.yaw, abs=0.01)
    np.testing.assert_allclose(np.array(rows[0][10:10 + 136], float).reshape(68, 2), first.landmarks, atol=0.006)
    assert [int(r[0]) for r in rows[::2]] == list(range(len(source_frames)))

    side = json.loads((tmp_path / "rec.json").read_text())
    assert side["settings"] == {"smoother": "kalman"} and side["provider"] == "CPUExecutionProvider"
    assert side["recording"]["frames"] == 72 and side["recording"]["rows"] == 144
    assert side["recording"]["ended"] is not None and side["recording"]["error"] is None


def test_unannotated_recording_keeps_the_picture(tmp_path, source_frames):
    """Colours and geometry survive encoding (a swapped channel or a shifted row would not)."""
    video = tmp_path / "plain.mp4"
    with Recorder(video, tmp_path / "plain.csv", FPS, SIZE, "ibug68") as rec:
        for i, frame in enumerate(source_frames[:10]):
            rec.write(i, i / FPS, frame, [])
    decoded = read_frames(video)
    mse = np.mean((decoded[5].astype(float) - source_frames[5].astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30.0


def test_odd_frame_size_and_fractional_fps(tmp_path, source_frames):
    crop = [np.ascontiguousarray(f[:359, :639]) for f in source_frames[:12]]
    video = tmp_path / "odd.mp4"
    with Recorder(video, tmp_path / "odd.csv", 29.97, (639, 359), "ibug68") as rec:
        for i, frame in enumerate(crop):
            rec.write(i, i / 29.97, frame, [])
    assert count_frames(video) == len(crop)
    first = read_frames(video)[0].astype(int)
    assert first.shape == (360, 640, 3), "padded to even for 4:2:0 H.264, as the README says"
    # the added column and row repeat their neighbours (up to coding noise), not black or a wrap-around
    assert np.abs(first[:, 639] - first[:, 638]).mean() < 1.0 and np.abs(first[359] - first[358]).mean() < 1.0
    assert np.abs(first[:359, :639] - crop[0]).mean() < 4.0, "the picture itself is not moved or scaled"


def test_close_is_idempotent_and_write_after_close_fails(tmp_path, source_frames):
    rec = Recorder(tmp_path / "a.mp4", tmp_path / "a.csv", FPS, SIZE, "ibug68")
    rec.write(0, 0.0, source_frames[0], fake_faces(0))
    rec.close()
    rec.close()
    with pytest.raises(RecordingError, match="closed"):
        rec.write(1, 1 / FPS, source_frames[1], [])
    assert count_frames(tmp_path / "a.mp4") == 1


def test_rejects_frames_and_faces_that_do_not_fit(tmp_path, source_frames):
    with Recorder(tmp_path / "b.mp4", tmp_path / "b.csv", FPS, SIZE, "ibug68") as rec:
        with pytest.raises(ValueError, match="640x360"):
            rec.write(0, 0.0, source_frames[0][:100], [])
        face = fake_faces(0, count=1)[0]
        wrong = FaceResult(1, face.landmarks[:50], 0.9, face.box, None, "ibug68")
        with pytest.raises(ValueError, match="68 landmarks"):
            rec.write(0, 0.0, source_frames[0], [wrong])
    assert complete_rows(tmp_path / "b.csv") == []


def test_sidecar_path_can_be_chosen_and_a_missing_folder_is_a_recording_error(tmp_path, source_frames):
    with Recorder(tmp_path / "c.mp4", tmp_path / "c.csv", FPS, SIZE, "ibug68", sidecar_path=tmp_path / "meta.json"):
        pass
    assert json.loads((tmp_path / "meta.json").read_text())["recording"]["frames"] == 0
    with pytest.raises(RecordingError, match="cannot start recording"):
        Recorder(tmp_path / "missing" / "d.mp4", tmp_path / "d.csv", FPS, SIZE, "ibug68")


# --- crash safety: SIGKILL -------------------------------------------------------------------------

def record_forever(shared_data: str, out_dir: str) -> None:
    """Child process body: record the real video in a loop at 30 fps until killed."""
    frames = read_frames(Path(shared_data) / VIDEO)
    out = Path(out_dir)
    rec = Recorder(out / "killed.mp4", out / "killed.csv", FPS, SIZE, "ibug68", {"model": "kill-test"})
    start = time.monotonic()
    i = 0
    while True:
        rec.write(i, i / FPS, frames[i % len(frames)], fake_faces(i))
        i += 1
        time.sleep(max(0.0, start + i / FPS - time.monotonic()))


@pytest.mark.slow
def test_sigkill_leaves_a_readable_csv_and_a_playable_video(tmp_path, shared_data):
    code = (f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(Path(__file__).parent)!r}]; "
            f"import test_recorder; test_recorder.record_forever({str(shared_data)!r}, {str(tmp_path)!r})")
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    table = tmp_path / "killed.csv"
    try:
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline and child.poll() is None:
            if table.exists() and table.read_bytes().count(b"\n") > 1 + 2 * 3 * FPS:  # ~3 s recorded
                break
            time.sleep(0.1)
        assert child.poll() is None, (tmp_path / "child.log").read_text()
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        log.close()
    assert child.returncode == -signal.SIGKILL

    rows = complete_rows(table)
    for row in rows:
        assert len(row) == len(LandmarkTable(68).columns)
        [float(v) for v in row[:10 + 2 * 68]]
    recorded = len({int(r[0]) for r in rows})
    assert recorded >= 3 * FPS
    playable = count_frames(tmp_path / "killed.mp4")
    assert recorded - 2 * FPS <= playable <= recorded
    side = json.loads((tmp_path / "killed.json").read_text())
    assert side["model"] == "kill-test" and side["recording"]["ended"] is None


# --- crash safety: write errors --------------------------------------------------------------------

class FullDisk(io.RawIOBase):
    """A file on a disk with ``budget`` bytes free: the write that crosses the limit stores what fits
    (as ``write(2)`` does), the next raises ENOSPC."""

    def __init__(self, path: Path, budget: int) -> None:
        self._file = open_for_writing(path)
        self._left = budget

    def write(self, data) -> int:
        if self._left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self._file.write(bytes(data)[: self._left])
        self._left -= written
        return written

    def writable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def truncate(self, size: int | None = None) -> int:
        return self._file.truncate(size)

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()
        super().close()


def record_until_full(tmp_path: Path, frames: list[np.ndarray], full: str, budget: int) -> tuple[int, RecordingError]:
    def opener(path: Path):
        return FullDisk(path, budget) if path.suffix == full else open_for_writing(path)

    rec = Recorder(tmp_path / "full.mp4", tmp_path / "full.csv", FPS, SIZE, "ibug68", opener=opener)
    with pytest.raises(RecordingError) as caught:
        for i in range(10 * len(frames)):
            rec.write(i, i / FPS, frames[i % len(frames)], fake_faces(i))
    with pytest.raises(RecordingError, match="already stopped"):
        rec.write(0, 0.0, frames[0], [])
    rec.close()
    return rec.frames, caught.value


def decodes_cleanly(path: Path) -> int:
    """Decode every packet with PyAV, which raises on a cut-off sample; returns the frame count."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_full_disk_on_the_video_keeps_whole_fragments_and_rows(tmp_path, source_frames):
    frames_ok, error = record_until_full(tmp_path, source_frames, ".mp4", budget=300_000)
    assert "No space left" in str(error) and "full.mp4" in str(error)
    assert frames_ok > FPS
    assert re.findall(r"(\d+) frames", str(error)) == [str(frames_ok)], "one frame count, the one kept"
    playable = decodes_cleanly(tmp_path / "full.mp4")
    assert 1 <= playable <= frames_ok
    assert count_frames(tmp_path / "full.mp4") == playable
    assert len(complete_rows(tmp_path / "full.csv")) == 2 * frames_ok
    assert (tmp_path / "full.csv").read_bytes().endswith(b"\n")
    side = json.loads((tmp_path / "full.json").read_text())["recording"]
    assert "No space left" in side["error"] and side["frames"] == frames_ok


def test_full_disk_on_the_csv_cuts_back_to_whole_rows(tmp_path, source_frames):
    """About 1.1 kB per row: the disk fills in the middle of a row, ~45 frames in."""
    frames_ok, error = record_until_full(tmp_path, source_frames, ".csv", budget=100_000)
    assert "full.csv" in str(error)
    text = (tmp_path / "full.csv").read_bytes()
    assert text.endswith(b"\n")
    rows = list(csv.reader(io.StringIO(text.decode())))[1:]
    assert len(rows) == 2 * frames_ok and all(len(r) == len(LandmarkTable(68).columns) for r in rows)
    assert FPS <= decodes_cleanly(tmp_path / "full.mp4") <= frames_ok + 1


def test_a_csv_only_recording_writes_no_video_and_video_extensions_are_checked(tmp_path, source_frames):
    with Recorder(None, tmp_path / "only.csv", FPS, SIZE, "ibug68") as rec:
        rec.write(0, 0.0, None, fake_faces(0))
        rec.write(1, 1 / FPS, None, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only.csv", "only.json"]
    rows = complete_rows(tmp_path / "only.csv")
    assert [r[:5] for r in rows] == [["0", "0.000000", "2", "0", "1"], ["0", "0.000000", "2", "1", "1"],
                                     ["1", f"{1 / FPS:.6f}", "0", "", "0"]]
    assert all(len(r) == len(LandmarkTable(68).columns) for r in rows) and set(rows[2][5:]) == {""}
    with pytest.raises(RecordingError, match=r"\.mp4, \.mov, \.mkv"):
        Recorder(tmp_path / "x.avi", tmp_path / "x.csv", FPS, SIZE, "ibug68")
    assert not (tmp_path / "x.avi").exists()


def test_pictures_carry_their_real_timestamps(tmp_path, source_frames):
    """Frames 1/10 s apart in a nominal 30 fps recording play 1/10 s apart (dropped frames keep real time)."""
    stamps = [0.0, 0.1, 0.2, 0.5, 1.5, 3.0]
    with Recorder(tmp_path / "t.mp4", tmp_path / "t.csv", FPS, SIZE, "ibug68") as rec:
        for i, t in enumerate(stamps):
            rec.write(i, 100.0 + t, source_frames[i], [])
    with av.open(str(tmp_path / "t.mp4")) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in container.decode(video=0)]
    assert times == pytest.approx(stamps, abs=1e-4)
