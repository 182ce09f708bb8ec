"""The window's controls, driven for real: a MainWindow offscreen on the shipped demo clip (a real video
file through OpenCV), the bundled ONNX model, the real worker and capture threads. Checked against the
clip's own decoded frames: pause, frame steps and seeks show exactly the frame they say; mirror flips
it; the plot panel receives the pose the pipeline computed; a snapshot holds the pixels on screen.
The only stand-ins are hardware: the operating system's camera list, and a camera behind OpenCV."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QByteArray, QSettings

import app.cameras
import app.window
import core.io.video
from app.application import WINDOW_SIZE
from app.cameras import CameraDevice, cameras_from_qt, fallback_cameras, list_cameras
from app.capture import SourceSpec
from app.plots import HISTORY_SECONDS, PlotSample, PosePlot, sample_of
from app.view_settings import ViewSettings, load_view_settings, save_view_settings
from app.window import MainWindow
from core.paths import DEMO_CLIP, REPO_ROOT
from tests.helpers_app import FRAME_TIMEOUT_MS, FrameCounter, UnpluggableCamera, as_array

pytestmark = pytest.mark.skipif(not DEMO_CLIP.is_file(), reason=f"the demo clip {DEMO_CLIP} is missing")

QUIET_MS = 400  # no frame for this long after a pause means the capture really stopped


def raw_frame(index: int) -> np.ndarray:
    """Frame ``index`` of the demo clip as OpenCV decodes it (its seeks are frame-exact on this file)."""
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok
    return image


def best_matching_frame(shown: np.ndarray, around: int, spread: int = 3) -> int:
    """Which clip frame near ``around`` the shown (annotated) image is: the one with most identical pixels
    (the overlay covers a few per cent of them, the rest are the decoded frame unchanged)."""
    candidates = range(max(0, around - spread), around + spread + 1)
    same = {i: np.all(shown == raw_frame(i), axis=2).mean() for i in candidates}
    best = max(same, key=same.get)
    assert same[best] > 0.7, same
    return best


def settle(qtbot, counter: FrameCounter) -> int:
    """Wait until frames stop arriving (the one in flight when pausing may still land); their count."""
    while True:
        seen = len(counter.stats)
        qtbot.wait(QUIET_MS)
        if len(counter.stats) == seen:
            return seen


def open_clip(qtbot, window: MainWindow, frames: int = 3) -> FrameCounter:
    counter = FrameCounter(window)
    assert window.start_source(SourceSpec(DEMO_CLIP))
    counter.wait_for(qtbot, frames)
    return counter


def shown_position(window: MainWindow) -> int:
    position = window.transport.position
    assert position is not None and window.transport.time_label.text().endswith(f"frame {position}")
    return position


@pytest.mark.slow
def test_pause_step_and_seek_show_exactly_the_frame_asked_for(qtbot, window: MainWindow) -> None:
    counter = open_clip(qtbot, window)
    assert window.transport.isVisible() and window.pause_action.isEnabled()
    assert window.transport.slider.maximum() == 471  # the clip's 472 frames

    window.pause_action.trigger()
    assert window.capture.paused and window.pause_action.text() == "Play"
    paused_at = settle(qtbot, counter)
    position = shown_position(window)
    assert best_matching_frame(as_array(window.view.image), position) == position

    window.step_action.trigger()  # exactly one frame, the next one
    counter.wait_for(qtbot, 1)
    assert settle(qtbot, counter) == paused_at + 1
    assert shown_position(window) == position + 1
    assert best_matching_frame(as_array(window.view.image), position + 1) == position + 1

    window.transport.slider.setValue(300)  # what a click or drag on the seek bar does
    qtbot.waitUntil(lambda: window.transport.position == 300, timeout=FRAME_TIMEOUT_MS)
    assert settle(qtbot, counter) == paused_at + 2  # still paused: the sought frame only
    assert best_matching_frame(as_array(window.view.image), 300) == 300
    assert window.transport.time_label.text().startswith("0:12.5 / 0:19.7")  # 300 / 23.976 fps

    window.step_back_action.trigger()
    qtbot.waitUntil(lambda: window.transport.position == 299, timeout=FRAME_TIMEOUT_MS)
    assert best_matching_frame(as_array(window.view.image), 299) == 299

    window.pause_action.trigger()  # play on from there
    assert not window.capture.paused and window.pause_action.text() == "Pause"
    counter.wait_for(qtbot, 5)
    assert window.transport.position > 300 and window.transport.slider.value() == window.transport.position
    times = [s.timestamp for s in counter.stats]
    assert times == sorted(times) and len(set(times)) == len(times)  # the stream clock never ran backwards


@pytest.mark.slow
def test_transport_keys(qtbot, window: MainWindow) -> None:
    counter = open_clip(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, "p")
    assert window.capture.paused
    settle(qtbot, counter)
    position = shown_position(window)
    qtbot.keyClick(window, ".")
    qtbot.waitUntil(lambda: window.transport.position == position + 1, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, ",")
    qtbot.waitUntil(lambda: window.transport.position == position, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, "p")
    assert not window.capture.paused
    counter.wait_for(qtbot, 3)


def test_seeking_while_playing_continues_from_there(qtbot, window: MainWindow) -> None:
    counter = open_clip(qtbot, window)
    window.seek(400)
    qtbot.waitUntil(lambda: (window.transport.position or 0) >= 400, timeout=FRAME_TIMEOUT_MS)
    counter.wait_for(qtbot, 3)
    assert 400 < window.transport.position < 471 and not window.capture.paused


@pytest.mark.slow
def test_the_position_restarts_when_the_demo_clip_loops(qtbot, window: MainWindow) -> None:
    counter = FrameCounter(window)
    assert window.play_demo()  # loops
    counter.wait_for(qtbot, 2)
    window.seek(465)
    qtbot.waitUntil(lambda: (window.transport.position or 0) >= 465, timeout=FRAME_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.transport.position < 10, timeout=FRAME_TIMEOUT_MS)  # round to the start
    window.pause_action.trigger()
    window.seek(471)  # the last frame
    qtbot.waitUntil(lambda: window.transport.position == 471, timeout=FRAME_TIMEOUT_MS)
    window.step_action.trigger()  # one press steps round the loop to the first frame
    qtbot.waitUntil(lambda: window.transport.position == 0, timeout=FRAME_TIMEOUT_MS)
    times = [s.timestamp for s in counter.stats]
    assert times == sorted(times)


@pytest.mark.slow
def test_mirror_flips_the_frame_and_is_remembered(qtbot, window: MainWindow, store: QSettings) -> None:
    counter = open_clip(qtbot, window)
    window.pause_action.trigger()
    settle(qtbot, counter)
    window.mirror_action.trigger()
    window.step_action.trigger()
    counter.wait_for(qtbot, 1)
    settle(qtbot, counter)
    position = shown_position(window)
    assert best_matching_frame(cv2.flip(as_array(window.view.image), 1), position) == position
    reread, warnings = load_view_settings(QSettings(store.fileName(), QSettings.Format.IniFormat))
    assert reread.mirror and warnings == []
    # A new window starts mirrored.
    again = MainWindow(QSettings(store.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.mirror_action.isChecked()


def test_the_plot_panel_receives_pose_and_confidence_and_can_be_hidden(qtbot, window: MainWindow,
                                                                        store: QSettings) -> None:
    counter = FrameCounter(window)
    assert window.play_demo()
    qtbot.waitUntil(lambda: len(counter.stats) >= 8 and counter.stats[-1].faces >= 1, timeout=FRAME_TIMEOUT_MS)
    assert window.plot.isVisible()
    last = counter.stats[-1]
    face = min(last.results, key=lambda f: f.track_id)
    for name, value in (("yaw", face.pose.yaw), ("pitch", face.pose.pitch), ("roll", face.pose.roll),
                        ("confidence", face.confidence)):
        times, values = window.plot.series(name)
        assert values[-1] == pytest.approx(value) and times[-1] == 0 and times[0] >= -HISTORY_SECONDS
    window.stop_source()  # hold still, so the drawn curves can be compared with the data
    qtbot.waitUntil(lambda: np.array_equal(window.plot.curves["yaw"].getData()[1], window.plot.series("yaw")[1],
                                           equal_nan=True))  # drawn at the next redraw tick
    for name in ("pitch", "roll", "confidence"):
        assert np.array_equal(window.plot.curves[name].getData()[1], window.plot.series(name)[1], equal_nan=True)
    assert len(window.plot.series("yaw")[0]) == len(counter.stats)  # one sample per frame shown

    window.plot_action.trigger()  # hide
    assert not window.plot.isVisible()
    assert not load_view_settings(QSettings(store.fileName(), QSettings.Format.IniFormat))[0].plot_visible
    assert window.play_demo()  # a new source starts a new trace
    assert len(window.plot.series("yaw")[0]) == 0
    qtbot.waitUntil(lambda: len(window.plot.series("yaw")[0]) >= 3, timeout=FRAME_TIMEOUT_MS)  # while hidden
    window.plot_action.trigger()  # show: the curves catch up at once
    assert window.plot.isVisible()
    assert len(window.plot.curves["yaw"].getData()[0]) == len(window.plot.series("yaw")[0])


def test_plot_history_keeps_ten_seconds_and_breaks_where_there_is_no_face(qtbot) -> None:
    plot = PosePlot()
    qtbot.addWidget(plot)
    plot.show()
    for i in range(15 * 30):  # 15 s at 30 fps, no face in the second half
        plot.add(PlotSample(i / 30, 5.0, -3.0, 1.0, 0.9) if i < 225 else sample_of(i / 30, []))
    times, yaw = plot.series("yaw")
    assert times[0] >= -HISTORY_SECONDS and times[0] < -HISTORY_SECONDS + 0.1 and times[-1] == 0
    assert np.isnan(yaw[-1]) and yaw[0] == 5.0
    plot.add(PlotSample(0.0, 1.0, 1.0, 1.0, 1.0))  # a new stream: its clock restarted
    assert len(plot.series("roll")[0]) == 1


@pytest.mark.slow
def test_snapshot_saves_the_picture_on_screen(qtbot, window: MainWindow) -> None:
    counter = open_clip(qtbot, window)
    window.mirror_action.trigger()
    window.pause_action.trigger()
    settle(qtbot, counter)
    path = window.save_snapshot()
    saved = cv2.imread(str(path))
    assert np.array_equal(saved, as_array(window.view.image))


class FakeQCameraDevice:
    """What Qt Multimedia's ``QMediaDevices.videoInputs()`` lists: an id and a description."""

    def __init__(self, device_id: bytes, description: str) -> None:
        self._id, self._description = device_id, description

    def id(self) -> QByteArray:
        return QByteArray(self._id)

    def description(self) -> str:
        return self._description


def test_cameras_from_qt_map_to_opencv_indices() -> None:
    devices = [FakeQCameraDevice(b"/dev/video2", "USB Cam"), FakeQCameraDevice(b"/dev/video0", "Integrated")]
    assert cameras_from_qt(devices) == [CameraDevice(2, "USB Cam"), CameraDevice(0, "Integrated")]
    windows_ids = [FakeQCameraDevice(b"\\\\?\\usb#vid_046d", "Logitech"), FakeQCameraDevice(b"@device:x", "OBS")]
    assert cameras_from_qt(windows_ids) == [CameraDevice(0, "Logitech"), CameraDevice(1, "OBS")]


def test_list_cameras_uses_qt_multimedia_when_it_loads(monkeypatch) -> None:
    fake = types.ModuleType("PyQt6.QtMultimedia")
    fake.QMediaDevices = types.SimpleNamespace(videoInputs=lambda: [FakeQCameraDevice(b"/dev/video4", "Cam")])
    monkeypatch.setitem(sys.modules, "PyQt6.QtMultimedia", fake)
    assert list_cameras() == [CameraDevice(4, "Cam")]
    fake.QMediaDevices.videoInputs = lambda: []  # Qt loads but finds none (no multimedia backend): ask OpenCV's side
    assert list_cameras() == fallback_cameras()


def test_without_qt_multimedia_cameras_come_from_sysfs(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "PyQt6.QtMultimedia", None)  # import fails, as without libpulse
    for node, index, name in (("video0", "0", "Integrated Camera"), ("video1", "1", "Integrated Camera"),
                              ("video10", "0", "USB Cam")):
        (tmp_path / node).mkdir()
        (tmp_path / node / "index").write_text(index + "\n")
        (tmp_path / node / "name").write_text(name + "\n")
    monkeypatch.setattr(app.cameras, "V4L2_SYSFS", tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    expected = [CameraDevice(0, "Integrated Camera (/dev/video0)"), CameraDevice(10, "USB Cam (/dev/video10)")]
    assert list_cameras() == fallback_cameras() == expected  # video1 is the webcam's metadata node
    monkeypatch.setattr(sys, "platform", "darwin")
    assert fallback_cameras() == [CameraDevice(i, f"Camera {i}") for i in range(4)]


class RecordingCamera(UnpluggableCamera):
    """A camera stand-in that remembers the modes it was asked for."""

    def __init__(self, real_capture: type) -> None:
        super().__init__(real_capture)
        self.requested: dict[int, float] = {}

    def set(self, prop: int, value: float) -> bool:
        self.requested[prop] = value
        return False


@pytest.mark.slow
def test_cameras_are_chosen_by_name_with_resolution_and_frame_rate(qtbot, window: MainWindow, store: QSettings,
                                                                   monkeypatch) -> None:
    real_capture, opened = cv2.VideoCapture, []

    def video_capture(target, *args):
        if isinstance(target, int):
            opened.append((target, RecordingCamera(real_capture)))
            return opened[-1][1]
        return real_capture(target, *args)

    monkeypatch.setattr(core.io.video.cv2, "VideoCapture", video_capture)
    cameras = [CameraDevice(0, "Integrated Camera"), CameraDevice(2, "USB Cam")]
    monkeypatch.setattr(app.window, "list_cameras", lambda: list(cameras))
    window._fill_source_menu()
    items = {a.text(): a for a in window.source_menu.actions()}
    assert {"Integrated Camera", "USB Cam", "Camera resolution", "Camera frame rate", "Open video…"} <= set(items)

    counter = FrameCounter(window)
    items["USB Cam"].trigger()
    counter.wait_for(qtbot, 2)
    assert opened[-1][0] == 2 and window.windowTitle() == "AnchorFace Live — USB Cam"
    assert not window.transport.isVisible() and not window.pause_action.isEnabled()  # cameras do not seek

    window._fill_source_menu()
    menus = {a.text(): a.menu() for a in window.source_menu.actions() if a.menu()}
    {a.text(): a for a in menus["Camera frame rate"].actions()}["30 fps"].trigger()
    {a.text(): a for a in menus["Camera resolution"].actions()}["1280 × 720"].trigger()
    counter.wait_for(qtbot, 2)
    index, camera = opened[-1]
    assert index == 2 and camera.requested[cv2.CAP_PROP_FPS] == 30
    assert (camera.requested[cv2.CAP_PROP_FRAME_WIDTH], camera.requested[cv2.CAP_PROP_FRAME_HEIGHT]) == (1280, 720)

    # Remembered by name: plugged in at another index next time, it is still the one chosen.
    reread = QSettings(store.fileName(), QSettings.Format.IniFormat)
    assert load_view_settings(reread)[0] == ViewSettings(camera_name="USB Cam", camera_fps=30)
    cameras[:] = [CameraDevice(0, "Integrated Camera"), CameraDevice(1, "Virtual"), CameraDevice(3, "USB Cam")]
    again = MainWindow(reread)
    qtbot.addWidget(again)
    assert again.configured_camera() == CameraDevice(3, "USB Cam") and again.settings.resolution == (1280, 720)
    again.apply_settings(replace(again.settings, camera_index=1))  # the settings dialog picks by index
    assert again.configured_camera() == CameraDevice(1, "Virtual")


def test_bad_view_settings_fall_back_with_a_warning(tmp_path: Path) -> None:
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    save_view_settings(store, ViewSettings("Cam", 60, True, False))
    assert load_view_settings(store) == (ViewSettings("Cam", 60, True, False), [])
    store.setValue("camera/fps", "25")
    store.setValue("view/mirror", "sideways")
    settings, warnings = load_view_settings(store)
    assert settings == ViewSettings("Cam", 0, False, False) and len(warnings) == 2
    assert "camera/fps" in warnings[0] and "view/mirror" in warnings[1]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb)")
def test_the_readme_screenshot_script_takes_a_picture_of_the_window(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "PYTHON": sys.executable, "FRAMES": "5", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(["tools/screenshot.sh", str(out)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    image = cv2.imread(str(out))
    assert image.shape == (WINDOW_SIZE[1], WINDOW_SIZE[0], 3)  # the whole window, at its start-up size
    assert image.std() > 20  # a picture, not a blank grab
