"""The desktop app, driven for real: the MainWindow on the shipped demo clip, the bundled ONNX model,
the real worker and capture threads, real recordings checked with OpenCV. Offscreen (conftest.py);
settings go to a temporary ini file. The only stand-in is a camera (there is none on CI machines):
a missing camera is the real thing, and a camera that is unplugged mid-session is simulated at the
OpenCV capture boundary."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QSettings, Qt

import core.io.video
from app.application import XCB_LIBRARIES, display_missing, missing_libraries, uses_xcb
from app.capture import SourceSpec
from app.notices import MAX_NOTICES
from app.settings import AppSettings, load_settings
from app.settings_dialog import SettingsDialog, select_data
from app.window import MainWindow
from core.io.table import LandmarkTable
from core.paths import DEMO_CLIP, REPO_ROOT
from core.run_options import SINK_OPTIONS, SinkOptions
from core.runtime import DEFAULT_MODEL_PATH
from core.runtime.precision import int8_path
from tests.helpers_app import FRAME_TIMEOUT_MS, FrameCounter, UnpluggableCamera, as_array, play_demo
from tests.helpers_outputs import OUTPUT_CASES
from tests.helpers_onnx import make_model


pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                                reason=f"the bundled model {DEFAULT_MODEL_PATH} is not there yet (written by "
                                       f"training/export)")


def fps_value(label_text: str) -> float:
    match = re.search(r"(\d+\.\d) fps", label_text)
    assert match, label_text
    return float(match.group(1))


def test_frames_are_processed_and_shown_with_status(qtbot, window: MainWindow) -> None:
    counter = play_demo(qtbot, window, frames=8)
    qtbot.waitUntil(lambda: counter.stats[-1].faces >= 1, timeout=FRAME_TIMEOUT_MS)  # the clip shows one face
    image, stats = window.view.image, counter.stats[-1]  # the frame on screen and its statistics
    assert (image.width(), image.height()) == (640, 360)
    assert not window.view.image_rect().isEmpty()
    assert fps_value(window.capture_label.text()) > 0 and fps_value(window.processing_label.text()) > 0
    assert window.provider_label.text() in ("Provider: CPU", "Provider: CUDA", "Provider: TensorRT")
    assert window.model_label.text() == f"Model: {window.model.info.name}"
    assert window.faces_label.text() == f"Faces: {stats.faces}"
    processed = [s.processed for s in counter.stats]
    assert processed == sorted(processed) and len(set(processed)) == len(processed)  # newest only, never old
    assert window.stack.currentWidget() is window.view
    # The overlay is drawn on the shown frame: it differs from the clip's own pixels at that frame.
    clip = cv2.VideoCapture(str(DEMO_CLIP))
    clip.set(cv2.CAP_PROP_POS_FRAMES, stats.frame_index)
    raw = clip.read()[1]
    clip.release()
    changed = np.abs(as_array(image).astype(int) - raw).max(axis=2) > 40
    assert 50 < changed.sum() < changed.size / 4


def test_view_keeps_the_aspect_ratio_when_resized(qtbot, window: MainWindow) -> None:
    play_demo(qtbot, window)
    for size in ((900, 400), (400, 700)):
        window.resize(*size)
        qtbot.waitUntil(lambda: window.view.width() <= size[0])
        rect = window.view.image_rect()
        assert rect.width() / rect.height() == pytest.approx(640 / 360, rel=1e-3)
        assert rect.width() <= window.view.width() + 0.5 and rect.height() <= window.view.height() + 0.5


def test_recording_from_the_ui_writes_a_playable_video_and_csv(qtbot, window: MainWindow, tmp_path: Path) -> None:
    counter = play_demo(qtbot, window)
    with qtbot.waitSignal(window.worker.recordingStarted, timeout=FRAME_TIMEOUT_MS) as started:
        window.record_action.trigger()
    video = started.args[0]
    assert re.fullmatch(r"anchorface_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.mp4", video.name)
    assert video.parent == tmp_path / "recordings"
    qtbot.waitUntil(lambda: window.recording_label.isVisible() and "REC 00:0" in window.recording_label.text())
    counter.wait_for(qtbot, 10)
    with qtbot.waitSignal(window.worker.recordingFinished, timeout=FRAME_TIMEOUT_MS) as finished:
        window.record_action.trigger()
    summary = finished.args[0]
    assert summary.error == "" and summary.frames >= 10
    assert not window.recording_label.isVisible() and not window.record_action.isChecked()

    capture = cv2.VideoCapture(str(video))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    assert decoded == summary.frames
    with open(summary.csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == LandmarkTable(68).columns
    assert all(len(r) == len(rows[0]) for r in rows[1:])
    frames = [int(r[0]) for r in rows[1:]]
    assert frames == sorted(frames)
    assert 0 < len(set(frames)) <= summary.frames  # one row per face per recorded frame that had a face
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["recording"]["frames"] == summary.frames and sidecar["recording"]["ended"]
    assert sidecar["model"] == window.model.info.name and sidecar["provider"] == window.model.provider


def test_closing_the_window_finalises_the_recording(qtbot, window: MainWindow) -> None:
    counter = play_demo(qtbot, window)
    with qtbot.waitSignal(window.worker.recordingStarted, timeout=FRAME_TIMEOUT_MS) as started:
        window.record_action.trigger()
    counter.wait_for(qtbot, 3)
    window.close()
    sidecar = json.loads(started.args[0].with_suffix(".json").read_text())
    assert sidecar["recording"]["ended"] and sidecar["recording"]["frames"] >= 3
    capture = cv2.VideoCapture(str(started.args[0]))
    assert capture.read()[0]
    capture.release()


def test_snapshot_saves_the_annotated_frame(qtbot, window: MainWindow, tmp_path: Path) -> None:
    play_demo(qtbot, window)
    path = window.save_snapshot()
    assert path is not None and path.parent == tmp_path / "recordings" and path.suffix == ".png"
    image = cv2.imread(str(path))
    assert image.shape == (360, 640, 3)


def test_settings_dialog_round_trips_through_qsettings_and_applies_live(qtbot, window: MainWindow,
                                                                          store: QSettings, tmp_path: Path) -> None:
    counter = play_demo(qtbot, window)
    dialog = window.open_settings()
    dialog.camera_index.setValue(3)
    select_data(dialog.resolution, (1280, 720))
    select_data(dialog.fields["smoothing"], "one-euro")
    dialog.fields["one-euro/beta"].setValue(7.5)
    dialog.fields["threshold"].setValue(0.45)
    select_data(dialog.fields["strategy"], "argmax")
    dialog.fields["detection_interval"].setValue(4)
    dialog.draw_boxes["pose_axes"].setChecked(False)
    dialog.recording_folder.setText(str(tmp_path / "elsewhere"))
    with qtbot.waitSignal(dialog.accepted):
        dialog.accept()
    edited = dialog.settings

    stored, warnings = load_settings(QSettings(store.fileName(), QSettings.Format.IniFormat))
    assert warnings == [] and stored == edited == window.settings
    assert (stored.camera_index, stored.resolution, stored.pipeline.threshold, stored.pipeline.strategy) == (
        3, (1280, 720), 0.45, "argmax")
    assert stored.pipeline.one_euro.beta == 7.5 and not stored.draw.pose_axes

    # Applied live: the running pipeline picks up the new configuration; the source keeps playing.
    qtbot.waitUntil(lambda: window.worker.pipeline.config == edited.pipeline)
    assert window.worker.session.draw.pose_axes is False
    counter.wait_for(qtbot, 3)

    reopened = window.open_settings()  # shows what is stored
    assert reopened.edited_settings() == stored
    reopened.reject()


@pytest.mark.slow
def test_an_invalid_model_is_rejected_and_the_old_one_keeps_running(qtbot, window: MainWindow,
                                                                      tmp_path: Path) -> None:
    counter = play_demo(qtbot, window)
    old_model = window.model
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a model\n")
    dialog = window.open_settings()
    dialog.model_path.setText(str(bad))
    dialog.accept()
    assert dialog.isVisible()  # not accepted
    assert dialog.model_error.isVisible()
    assert "is not an ONNX model" in dialog.model_error.text() and str(bad) in dialog.model_error.text()
    assert "current model stays active" in dialog.model_error.text()
    assert window.model is old_model and window.worker.pipeline.model is old_model
    counter.wait_for(qtbot, 5)  # frames keep coming

    # A model whose outputs are NaN is refused the same way (issue 11: it used to be accepted and saved).
    dialog.model_path.setText(str(make_model(tmp_path / "nan.onnx", nan_on="all")))
    dialog.accept()
    assert dialog.isVisible() and "not finite" in dialog.model_error.text()
    assert window.model is old_model and window.settings.model_path == ""

    # A valid file is accepted, swapped in live, and the stream goes on.
    good = tmp_path / "custom.onnx"
    good.write_bytes(DEFAULT_MODEL_PATH.read_bytes())
    dialog.model_path.setText(str(good))
    dialog.accept()
    assert not dialog.isVisible() and not dialog.model_error.isVisible()
    assert window.model is not old_model and window.model.info.path == good
    qtbot.waitUntil(lambda: window.worker.pipeline.model is window.model)
    counter.wait_for(qtbot, 3)
    assert window.settings.model_path == str(good)


def test_a_missing_camera_shows_a_message_and_offers_a_video(qtbot, window: MainWindow) -> None:
    assert not window.start_camera(7)  # no camera at index 7 here (nor on any CI machine)
    assert window.stack.currentWidget() is window.message
    assert "No camera at index 7" in window.message.text
    assert window.message.open_button.isVisible() and window.message.demo_button.isVisible()
    assert window.capture is None and not window.start_action.isChecked()
    counter = FrameCounter(window)
    window.message.demo_button.click()
    counter.wait_for(qtbot, 2)
    assert window.stack.currentWidget() is window.view


def test_a_text_file_shows_a_message_and_the_window_stays_up(qtbot, window: MainWindow, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text((REPO_ROOT / "README.md").read_text())
    assert not window.start_source(SourceSpec(notes))
    assert window.stack.currentWidget() is window.message and window.isVisible()
    assert window.message.text.splitlines() == [f"{notes} is a text file, not a video or image file.",
                                                "Choose another file."]
    assert window.capture is None and not window.start_action.isChecked()
    counter = FrameCounter(window)
    window.message.demo_button.click()  # and it goes on with a real video
    counter.wait_for(qtbot, 2)
    assert window.stack.currentWidget() is window.view


def test_without_a_camera_the_app_starts_on_the_demo_clip(qtbot, store: QSettings, tmp_path: Path) -> None:
    store.setValue("camera/index", 7)
    store.sync()
    window = MainWindow(store, {"recording_folder": str(tmp_path)})
    qtbot.addWidget(window)
    window.show()
    counter = FrameCounter(window)
    window.start_initial(None)
    assert window.spec.target == DEMO_CLIP and window.spec.loop
    assert window.notice.isVisible() and "No camera at index 7" in window.notice.text
    assert "demo clip" in window.notice.text
    counter.wait_for(qtbot, 3)


def test_a_camera_unplugged_mid_session_stops_cleanly_and_keeps_the_recording(qtbot, window: MainWindow,
                                                                               monkeypatch) -> None:
    real_capture = cv2.VideoCapture
    cameras: list[UnpluggableCamera] = []

    def video_capture(target, *args):
        if isinstance(target, int):
            cameras.append(UnpluggableCamera(real_capture))
            return cameras[-1]
        return real_capture(target, *args)

    monkeypatch.setattr(core.io.video.cv2, "VideoCapture", video_capture)
    counter = FrameCounter(window)
    assert window.start_camera(0)
    counter.wait_for(qtbot, 2)
    with qtbot.waitSignal(window.worker.recordingStarted, timeout=FRAME_TIMEOUT_MS):
        window.record_action.trigger()
    counter.wait_for(qtbot, 3)
    with qtbot.waitSignals([window.worker.recordingFinished, window.sessionStopped],
                           timeout=FRAME_TIMEOUT_MS) as signals:
        cameras[0].unplug()
    summary = signals.all_signals_and_args[0].args[0]
    assert summary.error == "" and summary.frames >= 3
    assert json.loads(summary.video.with_suffix(".json").read_text())["recording"]["ended"]
    assert window.stack.currentWidget() is window.message
    assert "camera 0 stopped delivering frames" in window.message.text
    assert window.capture is None and not window.record_action.isChecked() and not window.recording_label.isVisible()


@pytest.mark.slow
def test_screenshot_option_runs_the_window_and_saves_a_png(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "main.py", "--source", str(DEMO_CLIP), "--screenshot", str(out),
                           "--frames", "5"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] >= 640 and image.shape[0] >= 360


@pytest.mark.slow
def test_screenshot_option_fails_cleanly_without_a_source(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "main.py", "--source", "7", "--screenshot", str(tmp_path / "x.png")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "No camera at index 7" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_keyboard_shortcuts(qtbot, window: MainWindow, tmp_path: Path) -> None:
    play_demo(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, "s")
    qtbot.waitUntil(lambda: any((tmp_path / "recordings").glob("*.png")))
    with qtbot.waitSignal(window.worker.recordingStarted, timeout=FRAME_TIMEOUT_MS):
        qtbot.keyClick(window, "r")
    with qtbot.waitSignal(window.worker.recordingFinished, timeout=FRAME_TIMEOUT_MS):
        qtbot.keyClick(window, "r")
    qtbot.keyClick(window, ",", Qt.KeyboardModifier.ControlModifier)
    dialog = window.findChild(SettingsDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.reject()
    qtbot.keyClick(window, "q", Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())


def test_a_corrupt_settings_store_falls_back_to_defaults_with_a_warning(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    path.write_bytes(b"[camera\n\x00\xff garbage ]]]\n")
    window = MainWindow(QSettings(str(path), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    assert window.settings == AppSettings()
    assert window.notice.isVisible() and "could not be read" in window.notice.text
    assert window.model is not None


# --- notices, failed models, start-up problems (issue 11) -------------------------------------------

def test_every_notice_shows_and_a_failed_model_stays_until_dismissed_and_is_never_saved(
        qtbot, store: QSettings, tmp_path: Path) -> None:
    """A configured model whose outputs are NaN, no camera, and more notices after: all are shown;
    the model notice survives newer ones until its own Dismiss; the bad path is never written back."""

    bad = make_model(tmp_path / "nan.onnx", nan_on="all")
    store.setValue("model/path", str(bad))
    store.setValue("camera/index", 7)
    store.sync()
    window = MainWindow(store, {"recording_folder": str(tmp_path)})
    qtbot.addWidget(window)
    window.show()
    window.start_initial(None)
    assert window.model is not None and window.settings.model_file == DEFAULT_MODEL_PATH
    assert window.model.info.path in (DEFAULT_MODEL_PATH, int8_path(DEFAULT_MODEL_PATH)), "the bundled model runs"
    assert "configured model could not be used" in window.notice.text and "not finite" in window.notice.text
    assert "No camera at index 7" in window.notice.text, "the camera notice does not hide the model one"
    for i in range(MAX_NOTICES + 2):
        window.notice.show_notice(f"later notice {i}")
    assert len(window.notice.notices) <= MAX_NOTICES + 1
    (model_notice,) = [n for n in window.notice.notices if "configured model" in n.text]
    assert "No camera" not in window.notice.text, "ordinary notices make room, oldest first"
    model_notice.dismiss_button.click()
    assert "configured model" not in window.notice.text and window.notice.isVisible()
    for notice in list(window.notice.notices):
        notice.dismiss_button.click()
    assert not window.notice.isVisible()

    window.apply_settings(replace(window.settings, pipeline=replace(window.settings.pipeline, threshold=0.5)))
    store.sync()
    assert window.settings.model_path == "" and store.value("model/path") == ""


def test_binary_garbage_settings_file_gives_a_warning(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    path.write_bytes(bytes(range(256)) * 16)  # no parse error from QSettings: it reads as an empty store
    store = QSettings(str(path), QSettings.Format.IniFormat)
    assert store.status() == QSettings.Status.NoError
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.show()
    assert window.settings == AppSettings()
    assert window.notice.isVisible() and "not a text file" in window.notice.text


@pytest.mark.slow
def test_no_display_is_one_line_and_exit_2_before_qt_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "main.py", "--source", str(DEMO_CLIP)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no display found — use --headless, or xvfb-run -a python main.py" in done.stderr
    assert "xcb" not in done.stderr.replace("xvfb-run", "")
    assert display_missing({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not display_missing({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not display_missing({"DISPLAY": ":0"}, "linux") and not display_missing({}, "win32")


@pytest.mark.slow
def test_missing_xcb_library_is_one_line_with_the_apt_command_and_exit_2_before_qt_starts() -> None:
    """With an X display but a library the xcb plugin needs missing, main.py says which package to
    install instead of letting Qt abort (134). The missing library is a name no system has, put in the
    table the check reads; the loader itself (ctypes) runs for real, so a present one (libc) is not named."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "XDG_SESSION_TYPE")}
    env["DISPLAY"] = ":97"
    code = ("import sys, main, app.application as a\n"
            "a.XCB_LIBRARIES.clear()\n"
            "a.XCB_LIBRARIES.update({'libanchorface-absent.so.7': 'anchorface-absent7', 'libc.so.6': 'libc6'})\n"
            f"sys.exit(main.main(['--source', {str(DEMO_CLIP)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "libanchorface-absent.so.7" in lines[0] and "sudo apt install anchorface-absent7" in lines[0]
    assert "libc" not in lines[0].replace("libanchorface", "")
    assert uses_xcb({"DISPLAY": ":0"}, "linux") and uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0"}, "darwin")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin and ldd are Linux's")
def test_xcb_library_table_matches_what_the_installed_plugin_links() -> None:
    """The table names every X11 library the installed plugin links (ldd), and the loader check finds
    missing exactly the ones ldd cannot resolve on this machine."""
    import PyQt6

    qt = Path(PyQt6.__file__).parent / "Qt6"
    linked, unresolved = set(), set()
    for library in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"):
        out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
        for name, target in re.findall(r"^\s*(\S+) => (.+)$", out, re.M):
            if re.match(r"lib(xcb|xkb|X11)", name):
                linked.add(name)
                if "not found" in target:
                    unresolved.add(name)
    assert linked and linked <= set(XCB_LIBRARIES), linked - set(XCB_LIBRARIES)
    assert set(missing_libraries()) == unresolved


@pytest.mark.slow
def test_opening_a_missing_camera_keeps_opencvs_own_logging_quiet() -> None:
    """OpenCV's V4L2 and obsensor backends log to the C stderr when a camera index is not there; the
    window's source and the headless command say it in one line of their own instead."""
    code = ("import cv2, sys; from app.capture import SourceSpec, open_source; from core.io.video import SourceError\n"
            "try:\n    open_source(SourceSpec(7))\nexcept SourceError as exc:\n    print(exc)\n"
            "print(cv2.getLogLevel())")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no camera at index 7" in done.stdout
    assert done.stdout.split()[-1] != "0", "the log level is restored afterwards"
    assert "WARN" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    headless = subprocess.run([sys.executable, "main.py", "--source", "7", "--headless"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
    assert headless.returncode == 2
    assert "error: no camera at index 7" in headless.stderr
    assert "WARN" not in headless.stderr and "obsensor" not in headless.stderr, headless.stderr


# --- every output option, from the window's settings (tests/helpers_outputs.py) ---------------------------

@pytest.mark.parametrize("key", OUTPUT_CASES)
def test_the_window_offers_every_output_option(key: str, qtbot, store: QSettings, receiver, tmp_path: Path) -> None:
    window = MainWindow(store, {"recording_folder": str(tmp_path / "recordings"), key: OUTPUT_CASES[key].value(receiver)})
    qtbot.addWidget(window)
    window.show()
    counter = play_demo(qtbot, window)
    with qtbot.waitSignal(window.worker.recordingStarted, timeout=FRAME_TIMEOUT_MS):
        window.record_action.trigger()
    counter.wait_for(qtbot, 5)
    with qtbot.waitSignal(window.worker.recordingFinished, timeout=FRAME_TIMEOUT_MS) as finished:
        window.record_action.trigger()
    assert finished.args[0].error == ""
    OUTPUT_CASES[key].check(receiver, finished.args[0].csv)


def test_the_settings_dialog_has_a_row_per_output_option_and_refuses_a_bad_target(qtbot, window: MainWindow) -> None:
    dialog = window.open_settings()
    assert list(dialog.output_fields) == [option.key for option in SINK_OPTIONS]
    dialog.output_fields["uncertainty_columns"].setChecked(True)
    dialog.output_fields["stream"].setText("localhost")
    dialog.accept()
    assert dialog.isVisible() and "HOST:PORT" in dialog.output_error.text()
    dialog.output_fields["stream"].setText("")
    dialog.accept()
    assert not dialog.isVisible() and window.settings.outputs == SinkOptions(uncertainty_columns=True)
    assert load_settings(window.store)[0].outputs == SinkOptions(uncertainty_columns=True)


@pytest.mark.slow
def test_the_window_stops_streaming_when_the_setting_is_cleared(qtbot, store: QSettings, receiver,
                                                                tmp_path: Path) -> None:
    window = MainWindow(store, {"recording_folder": str(tmp_path / "rec"), "stream": f"127.0.0.1:{receiver.port}"})
    qtbot.addWidget(window)
    window.show()
    assert window.play_demo()
    qtbot.waitUntil(lambda: len([m for m in receiver.messages if m[0] == "/anchorface/frame"]) >= 3,
                    timeout=FRAME_TIMEOUT_MS)
    window.apply_settings(replace(window.settings, outputs=replace(window.settings.outputs, stream="")))
    assert load_settings(store)[0].outputs.stream == ""  # persisted as off
    qtbot.wait(500)  # the worker applies the change between frames
    before = len(receiver.messages)
    qtbot.wait(500)
    assert len(receiver.messages) == before
