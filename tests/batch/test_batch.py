"""``python main.py batch`` end to end on a real local Ray cluster (2 CPUs, one for the whole module),
real ONNX Runtime sessions and short real clips cut from the shared video: the same rows as the
headless command, failed rows for bad files, skipping on rerun, a worker killed mid-video, and the usage
errors that must stop the command before anything runs."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from batch.inputs import STAGING_NAME, UsageError, discover, plan_outputs
from batch.manifest import MANIFEST_NAME, JobResult, Manifest, ManifestRow, input_key
from core.runtime import DEFAULT_MODEL_PATH
from main import main
from core.paths import REPO_ROOT
from tests.helpers_outputs import OUTPUT_CASES, option_argv

ray = pytest.importorskip("ray", reason='Ray is the optional "batch" extra')
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(), reason="default model not built yet")]

CLIP_FRAMES = 20


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One small local cluster for the module (starting Ray costs seconds); the CLI joins it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as the CLI does: no usage report over the network
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def write_clip(source: Path, target: Path, start: int, frames: int = CLIP_FRAMES) -> Path:
    """``frames`` frames of ``source`` from ``start``, as an MJPEG AVI (decodes on every OpenCV build)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(source))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = None
    for _ in range(frames):
        ok, image = capture.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 30,
                                     (image.shape[1], image.shape[0]))
        writer.write(image)
    writer.release()
    capture.release()
    return target


@pytest.fixture(scope="module")
def inputs(shared_data: Path, tmp_path_factory) -> Path:
    """``a/clip.avi`` and ``b/clip.avi`` (same name, different frames) and a corrupt ``broken.avi``."""
    folder = tmp_path_factory.mktemp("inputs")
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    write_clip(clip, folder / "a" / "clip.avi", 0)
    write_clip(clip, folder / "b" / "clip.avi", 30)
    good = (folder / "a" / "clip.avi").read_bytes()
    (folder / "broken.avi").write_bytes(good[:200] + b"\x00" * 5000)  # a header, then nothing decodable
    return folder


def manifest_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]


def headless_reason(source: Path, capsys) -> str:
    """The one line the headless command prints for ``source``, without its ``error: `` prefix."""
    assert main(["--source", str(source), "--headless"]) == 2
    return capsys.readouterr().err.strip().removeprefix("error: ")


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class BatchRun:
    code: int
    printed: str
    out: Path


@pytest.fixture(scope="module")
def first_batch(inputs: Path, tmp_path_factory) -> BatchRun:
    """The batch command over the three inputs, run once for the tests that only read its results."""
    out = tmp_path_factory.mktemp("batch") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["batch", str(inputs), "--out", str(out)])
    return BatchRun(code, printed.getvalue(), out)


def test_rows_identical_to_the_headless_command(inputs: Path, first_batch: BatchRun, tmp_path: Path) -> None:
    assert main(["--source", str(inputs / "a" / "clip.avi"), "--headless", "--landmarks",
                 str(tmp_path / "headless.csv")]) == 0
    headless = (tmp_path / "headless.csv").read_text().splitlines()
    batch = (first_batch.out / "a" / "clip.csv").read_text().splitlines()
    assert len(headless) == CLIP_FRAMES + 1, "one face per frame plus the header"
    assert batch == headless
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "headless.json", first_batch.out / "a" / "clip.json")]
    assert sidecars[1]["recording"]["csv"] == "clip.csv", "the sidecar names the final file, not a staging name"
    for sidecar in sidecars:  # the same settings, model and counts; only the file name and times differ
        sidecar["recording"] = {k: v for k, v in sidecar["recording"].items() if k not in ("csv", "started", "ended")}
    assert sidecars[0] == sidecars[1]


def test_corrupt_file_is_one_failed_row_with_the_headless_reason(inputs: Path, first_batch: BatchRun,
                                                                 capsys) -> None:
    reason = headless_reason(inputs / "broken.avi", capsys)
    assert first_batch.code == 1
    assert "done 2" in first_batch.printed and "failed 1" in first_batch.printed
    assert f"broken.avi: {reason}" in first_batch.printed, "the summary names the failed file with its reason"
    rows = {Path(r["input"]).relative_to(inputs).as_posix(): r for r in manifest_rows(first_batch.out)}
    assert set(rows) == {"a/clip.avi", "b/clip.avi", "broken.avi"}
    assert rows["broken.avi"]["status"] == "failed" and rows["broken.avi"]["reason"] == reason
    for name in ("a/clip.avi", "b/clip.avi"):
        row = rows[name]
        assert row["status"] == "done" and row["frames"] == CLIP_FRAMES and row["faces_per_frame"] == 1.0
        assert row["size"] == (inputs / name).stat().st_size and len(row["model_sha256"]) == 64
        assert row["settings"]["pipeline"]["smoothing"] == "kalman" and row["seconds"] > 0


def test_an_incomplete_video_is_done_with_a_warning_in_the_summary_and_the_manifest(shared_data: Path,
                                                                                   tmp_path: Path) -> None:
    """A truncated file (the first 10 % of a real clip, whose header still declares 472 frames) is
    processed as far as it goes and counted done, but never silently: its summary line and manifest
    row carry the headless warning."""
    clip = (shared_data / "video" / "pyfeat_WolfgangLanger_Pexels.mp4").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.mp4").write_bytes(clip[:len(clip) // 10])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert code == 0
    (row,) = manifest_rows(tmp_path / "out")
    assert row["status"] == "done" and row["warning"].startswith("incomplete source: stopped at frame ")
    assert " of 472; " in row["warning"] and 0 < row["frames"] < 472
    assert "(done 1, skipped as already done 0, failed 0, of them done with warnings 1)" in printed.getvalue()
    assert f"cut.mp4: {row['warning']}" in printed.getvalue()


def test_same_file_name_in_two_folders_gives_two_outputs(first_batch: BatchRun) -> None:
    out = first_batch.out
    assert files_under(out) == {"a/clip.csv", "a/clip.json", "b/clip.csv", "b/clip.json", MANIFEST_NAME}
    assert (out / "a" / "clip.csv").read_text() != (out / "b" / "clip.csv").read_text()


def test_rerun_skips_what_is_done(inputs: Path, first_batch: BatchRun, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_batch.out, out)  # this test's own copy: the others read the first run's
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")}
    assert main(["batch", str(inputs), "--out", str(out)]) == 1  # the corrupt file is tried again and fails again
    assert "done 0, skipped as already done 2, failed 1" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")} == stamps, "done outputs are not rewritten"
    assert len(manifest_rows(out)) == 4


def batch_killing_a_busy_worker(argv: list[str], out: Path) -> tuple[int, list[str]]:
    """Run the batch command while a thread kills (``ray.kill``) the actor writing the first staged CSV
    once it holds a few rows; returns the exit code and the killed actor's name."""
    killed: list[str] = []

    def kill_first_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for csv_file in (out / STAGING_NAME).glob("*/*.csv"):
                if csv_file.read_text().count("\n") > 3:
                    actor_name = csv_file.parent.name.rsplit(".", 1)[0]
                    ray.kill(ray.get_actor(actor_name))
                    killed.append(actor_name)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_busy_worker)
    killer.start()
    code = main(["batch", *argv, "--out", str(out)])
    killer.join()
    assert killed, "no worker was caught mid-video"
    return code, killed


def test_worker_killed_mid_video_is_retried_and_every_output_is_present_once(inputs: Path, tmp_path: Path,
                                                                            capsys) -> None:
    out = tmp_path / "out"
    code, _ = batch_killing_a_busy_worker([str(inputs / "a"), str(inputs / "b")], out)
    assert code == 0, capsys.readouterr().err
    rows = manifest_rows(out)
    assert sorted(Path(r["input"]).parent.name for r in rows) == ["a", "b"], "one row per video"
    assert all(r["status"] == "done" and r["frames"] == CLIP_FRAMES for r in rows)
    assert sorted(r["attempts"] for r in rows) == [1, 2], "the killed worker's video ran again, once"
    assert files_under(out) == {"a/clip.csv", "a/clip.json", "b/clip.csv", "b/clip.json", MANIFEST_NAME}
    for folder in ("a", "b"):
        assert (out / folder / "clip.csv").read_text().count("\n") == CLIP_FRAMES + 1, "complete, not doubled"


def test_retries_are_bounded_and_a_video_out_of_retries_is_a_failed_row(inputs: Path, tmp_path: Path,
                                                                       capsys) -> None:
    out = tmp_path / "out"
    code, _ = batch_killing_a_busy_worker([str(inputs / "a" / "clip.avi"), "--retries", "0", "--workers", "1"], out)
    assert code == 1
    assert "clip.avi: worker died on this video (1 attempts)" in capsys.readouterr().out
    (row,) = manifest_rows(out)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["outputs"] == []
    assert files_under(out) == {MANIFEST_NAME}, "no half-written output, no staging leftovers"


def test_plan_keeps_relative_paths_so_equal_names_never_collide(tmp_path: Path) -> None:
    sources = [tmp_path / "x" / "s1" / "clip.mp4", tmp_path / "x" / "s2" / "clip.mp4"]
    stems = [task.stem for task in plan_outputs(sources, tmp_path / "out")]
    assert stems == [(tmp_path / "out" / "s1" / "clip").absolute(), (tmp_path / "out" / "s2" / "clip").absolute()]


def test_pool_sizing_keeps_threads_times_workers_within_the_cores() -> None:
    from batch.pool import PoolPlan, plan_pool

    assert plan_pool({"CPU": 2.0}, None, "auto") == PoolPlan(2, 1, 0.0, "cpu")
    assert plan_pool({"CPU": 8.0}, 2, "auto") == PoolPlan(2, 4, 0.0, "cpu")
    assert plan_pool({"CPU": 2.0}, 8, "auto") == PoolPlan(2, 1, 0.0, "cpu"), "capped at the CPUs"
    assert plan_pool({"CPU": 16.0, "GPU": 2.0}, None, "auto") == PoolPlan(16, 1, 0.125, "cuda")
    assert plan_pool({"CPU": 4.0, "GPU": 8.0}, None, "auto") == PoolPlan(4, 1, 1.0, "cuda"), "at most one GPU each"
    assert plan_pool({"CPU": 4.0, "GPU": 1.0}, None, "cpu") == PoolPlan(4, 1, 0.0, "cpu")
    with pytest.raises(UsageError, match="no GPU"):
        plan_pool({"CPU": 4.0}, None, "cuda")


def test_the_precision_reaches_the_workers_and_the_manifest_settings() -> None:
    """Each worker loads the model at the batch's --precision; a rerun at another precision redoes the
    videos, since their landmarks differ (the manifest compares the settings)."""
    from batch.job import JobSettings
    from batch.pool import plan_pool
    from core.run_options import RunOptions

    assert plan_pool({"CPU": 2.0}, None, "auto", "fp32").precision == "fp32"
    assert plan_pool({"CPU": 2.0}, None, "auto").precision == "auto"
    settings = {p: JobSettings(RunOptions("", precision=p)).as_dict() for p in ("auto", "fp32")}
    assert settings["auto"]["precision"] == "auto" and settings["auto"] != settings["fp32"]


def test_manifest_counts_a_video_done_only_for_the_same_file_model_and_settings(tmp_path: Path) -> None:
    source, output = tmp_path / "clip.mp4", tmp_path / "clip.csv"
    source.write_bytes(b"video")
    output.write_text("rows")
    key = input_key(source, "sha-a", {"smoothing": "kalman", "size": (1, 2)})
    Manifest(tmp_path).append(ManifestRow(key, JobResult("done", frames=1)))
    with (tmp_path / MANIFEST_NAME).open("a") as f:
        f.write('{"input": "torn')  # a driver killed mid-line
    manifest = Manifest(tmp_path)  # read back from disk
    assert manifest.is_done(input_key(source, "sha-a", {"smoothing": "kalman", "size": (1, 2)}), [output])
    assert not manifest.is_done(input_key(source, "sha-b", {"smoothing": "kalman", "size": (1, 2)}), [output])
    assert not manifest.is_done(input_key(source, "sha-a", {"smoothing": "none", "size": (1, 2)}), [output])
    assert not manifest.is_done(key, [output, tmp_path / "clip.json"]), "an output is missing"
    source.write_bytes(b"another video")
    assert not manifest.is_done(input_key(source, "sha-a", {"smoothing": "kalman", "size": (1, 2)}), [output])
    Manifest(tmp_path).append(ManifestRow(key, JobResult("failed", "cannot read")))
    assert not Manifest(tmp_path).is_done(key, [output]), "the latest row wins"


def test_usage_errors_exit_2_with_one_line(inputs: Path, tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: a read-only mount, where there is one
            locked = Path("/proc/sys")
        if os.access(locked, os.W_OK):
            pytest.skip("no folder here is read-only for this user")
        assert main(["batch", str(inputs / "a"), "--out", str(locked)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: output folder is not writable: {locked}"]
        assert not (locked / MANIFEST_NAME).exists()
    finally:
        (tmp_path / "locked").chmod(0o700)
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: no input videos found")
    assert main(["batch", str(tmp_path / "nope*.mp4"), "--out", str(tmp_path / "out")]) == 2
    assert "no video matches" in capsys.readouterr().err


def test_without_ray_the_command_says_how_to_install_it(inputs: Path, tmp_path: Path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees where the extra is missing
    assert main(["batch", str(inputs / "a"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == 'error: batch processing needs Ray: pip install -e ".[batch]"'


# --- a batch never touches its inputs (issue 24) --------------------------------------------------

def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``folder`` (links not followed) with its bytes, mtime and inode."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"link",
                                         p.lstat().st_mtime_ns, p.lstat().st_ino) for p in folder.rglob("*")}


@pytest.fixture
def ray_must_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI believe no cluster is running, and fail the test if it then tries to start one."""
    import batch.cli

    def start_ray(address: str | None) -> float:
        raise AssertionError("Ray was started before the command refused")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(batch.cli, "_start_ray", start_ray)


@pytest.mark.parametrize("how", ["out is the input folder", "out is a symlink to it", "hard link in out"])
def test_an_output_that_is_an_input_video_is_refused_before_ray_starts(shared_data: Path, tmp_path: Path, how: str,
                                                                       ray_must_not_start: None, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "a.mp4"
    shutil.copyfile(shared_data / "video" / "pyfeat_single_face.mp4", source)
    out = folder
    if how == "out is a symlink to it":
        out = tmp_path / "results"
        out.symlink_to(folder)
    elif how == "hard link in out":
        out = tmp_path / "results"
        out.mkdir()
        os.link(source, out / "a.mp4")  # an earlier copy of the input, made by the user
    before = snapshot(tmp_path)
    assert main(["batch", str(folder), "--out", str(out), "--video"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: output {out.absolute() / 'a.mp4'} is the source video {source}; "
                   f"choose another --out folder"]
    assert snapshot(tmp_path) == before, "no byte, time stamp or inode changed; nothing created"


def test_discovery_leaves_out_the_output_folder_and_staging_folders(inputs: Path, tmp_path: Path) -> None:
    """Last run's outputs under ``--out`` inside the searched folder, and a killed run's staged files,
    are never inputs, whether found by a folder search, a glob, or through a symlinked output folder."""
    folder = tmp_path / "in"
    clip = write_clip(inputs / "a" / "clip.avi", folder / "clip.avi", 0, frames=2)
    earlier = folder / "results" / "clip.avi"
    for copy in (earlier, folder / "sub" / STAGING_NAME / "w1.abc" / "staged.avi"):
        copy.parent.mkdir(parents=True)
        shutil.copyfile(clip, copy)
    (tmp_path / "linked").symlink_to(folder / "results")
    for out in (folder / "results", tmp_path / "linked"):
        assert discover([str(folder)], out) == [clip]
        assert discover([str(folder / "**" / "*.avi")], out) == [clip]
    assert discover([str(folder)], folder) == [clip, earlier], "an output folder that is the searched one hides nothing"
    assert discover([str(earlier)], folder / "results") == [earlier], "a file named explicitly is taken"


def test_an_output_folder_inside_the_input_folder_is_not_processed_again(inputs: Path, tmp_path: Path,
                                                                         capsys) -> None:
    folder = tmp_path / "in"
    write_clip(inputs / "a" / "clip.avi", folder / "clip.avi", 0)
    out = folder / "results"
    assert main(["batch", str(folder), "--out", str(out), "--video"]) == 0
    assert "videos: 1 (done 1, skipped as already done 0, failed 0)" in capsys.readouterr().out
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["batch", str(folder), "--out", str(out), "--video"]) == 0
    assert "videos: 1 (done 0, skipped as already done 1, failed 0)" in capsys.readouterr().out
    assert files_under(folder) == {"clip.avi", "results/clip.csv", "results/clip.json", "results/clip.mp4",
                                   f"results/{MANIFEST_NAME}"}
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def hold_run_lock(staging: Path, run_id: str) -> subprocess.Popen:
    """Another process (a batch still running) holding ``run_id``'s staging lock until its stdin closes."""
    code = ("import sys; from pathlib import Path; from batch.staging import run_lock\n"
            f"with run_lock(Path({str(staging)!r}), {run_id!r}):\n"
            "    print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_later_run_removes_what_killed_runs_staged_and_keeps_live_runs_files(inputs: Path, first_batch: BatchRun,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_batch.out, out)
    staging = out / STAGING_NAME
    killed = staging / "anchorface-batch-0badc0de-w1.0123456789ab"  # a driver SIGKILLed: lock file, no lock
    unlocked_era = staging / "anchorface-batch-00000000-w2.ba9876543210"  # left before runs took locks
    live = staging / "anchorface-batch-1a2b3c4d-w1.aaaaaaaaaaaa"
    for folder in (killed, unlocked_era, live):
        folder.mkdir(parents=True)
        shutil.copyfile(first_batch.out / "a" / "clip.csv", folder / "clip.csv")
    (staging / "anchorface-batch-0badc0de.lock").touch()
    holder = hold_run_lock(staging, "anchorface-batch-1a2b3c4d")
    try:
        assert main(["batch", str(inputs), "--out", str(out)]) == 1  # broken.avi fails again, as always
        assert files_under(staging) == {"anchorface-batch-1a2b3c4d.lock", f"{live.name}/clip.csv"}
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not staging.exists(), "the live run cleaned up after itself when it ended"


def test_non_videos_are_not_discovered_and_a_named_one_is_a_failed_row(inputs: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    clip = write_clip(inputs / "a" / "clip.avi", folder / "clip.avi", 0, frames=2)
    notes = folder / "notes.txt"
    notes.write_text((REPO_ROOT / "README.md").read_text())
    shutil.copyfile(REPO_ROOT / "docs" / "screenshot.png", folder / "screenshot.png")
    assert discover([str(folder)], tmp_path / "out") == [clip], "a folder search takes videos only"
    reason = headless_reason(notes, capsys)
    assert reason == f"{notes} is a text file, not a video or image file"
    assert main(["batch", str(notes), "--out", str(tmp_path / "out")]) == 1
    assert f"notes.txt: {reason}" in capsys.readouterr().out
    (row,) = manifest_rows(tmp_path / "out")
    assert row["status"] == "failed" and row["reason"] == reason and row["frames"] == 0


@pytest.mark.parametrize("key", OUTPUT_CASES)
def test_batch_offers_every_output_option(key: str, inputs: Path, receiver, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["batch", str(inputs / "a" / "clip.avi"), "--out", str(out), *option_argv(key, receiver)]) == 0
    OUTPUT_CASES[key].check(receiver, out / "clip.csv")
