"""The main window: wires sources, the processing worker, the settings and the recorder to the user.

It holds no algorithm and does no per-frame work: the capture thread reads, the worker processes,
draws and records, and the window only shows the newest result and turns clicks into commands.
Everything that can go wrong because of the outside world (no camera, a bad file, a model that does
not load, an unwritable folder) ends up as a sentence in the window, never as a traceback.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMenu, QSplitter, QStackedWidget, QStyle,
                             QToolBar, QToolButton, QVBoxLayout, QWidget)

from app.cameras import CameraDevice, list_cameras
from app.capture import CaptureThread, SourceSpec, open_source
from app.file_names import timestamped_stem, unused_path
from app.notices import NoticeStack
from app.plots import PosePlot, sample_of
from app.settings import RESOLUTIONS, AppSettings, load_settings, save_settings
from app.settings_dialog import SettingsDialog
from app.view import MessagePanel, TransportBar, VideoView
from app.view_settings import FRAME_RATES, ViewSettings, load_view_settings, save_view_settings
from app.worker import FrameStats, ProcessingWorker, RecordingSummary
from core.pipeline import FramePipeline
from core.runtime import LandmarkModel, ModelError, load_model
from core.io.video import SourceError, parse_source
from core.paths import DEMO_CLIP

log = logging.getLogger(__name__)


def load_model_as(path: Path, device: str, precision: str) -> LandmarkModel:
    """:func:`core.runtime.load_model` by the settings' model key ``(file, device, precision)``: how the
    window loads at start-up and the settings dialog tries a changed model."""
    return load_model(path, device, precision=precision)

T = TypeVar("T")

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v);;All files (*)"


class MainWindow(QMainWindow):
    """The AnchorFace Live window. ``store`` is where settings persist (tests pass a temporary one);
    ``overrides`` replace settings for this run only (command-line options)."""

    frameShown = pyqtSignal(object)  # FrameStats of the frame now on screen
    sessionStopped = pyqtSignal(str)  # why the source stopped ("" when the user stopped it)

    def __init__(self, store: QSettings, overrides: dict | None = None, max_frames: int | None = None) -> None:
        super().__init__()
        self.store = store
        settings, warnings = load_settings(store)
        self.settings: AppSettings = settings.overridden(overrides or {})
        view_settings, view_warnings = load_view_settings(store)
        self.view_settings: ViewSettings = view_settings  # the window's own choices (camera name, mirror, plot)
        warnings += view_warnings
        self.max_frames = max_frames
        self.model: LandmarkModel | None = None
        self.worker: ProcessingWorker | None = None
        self.spec: SourceSpec | None = None  # the chosen source (kept while stopped, so Start resumes it)
        self.capture: CaptureThread | None = None  # the running capture, if any
        self.recording_path: Path | None = None
        self.recording_since: float | None = None
        self.last_stats: FrameStats | None = None
        self.source_error = ""  # why the last source could not be opened
        self.setWindowTitle("AnchorFace Live")
        self._build_ui()
        if warnings:
            log.warning("settings: %s", " ".join(warnings))
            self.notice.show_notice("Some settings could not be read and were reset to defaults: "
                                    + " ".join(warnings))
        self._load_startup_model()
        self._update_actions()

    # --- layout -------------------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.view = VideoView()
        self.message = MessagePanel()
        self.message.openVideoRequested.connect(self.open_video_file)
        self.message.demoRequested.connect(self.play_demo)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.message)
        self.notice = NoticeStack()
        self.plot = PosePlot()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.plot)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([800, 300])
        self.transport = TransportBar()
        self.transport.seekRequested.connect(self.seek)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.transport)
        self.setCentralWidget(central)

        self.source_menu = QMenu("Source", self)
        self.source_menu.aboutToShow.connect(self._fill_source_menu)
        self.source_button = QToolButton(text="Source", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.source_button.setMenu(self.source_menu)
        self.source_button.setToolTip("Choose a camera or open a video file")
        self.open_action = self._action("Open video…", QKeySequence.StandardKey.Open, self.open_video_file)
        self.start_action = self._action("Start", "Space", self.toggle_running, checkable=True)
        self.record_action = self._action("Record", "R", self.toggle_recording, checkable=True)
        self.snapshot_action = self._action("Snapshot", "S", self.save_snapshot)
        self.settings_action = self._action("Settings…", "Ctrl+,", self.open_settings)
        self.quit_action = self._action("Quit", "Ctrl+Q", self.close)
        self.pause_action = self._action("Pause", "P", self.toggle_pause, checkable=True)
        self.step_back_action = self._action("Previous frame", ",", lambda: self.step(-1))
        self.step_action = self._action("Next frame", ".", lambda: self.step(1))
        self.mirror_action = self._action("Mirror", "M", self.toggle_mirror, checkable=True)
        self.mirror_action.setChecked(self.view_settings.mirror)
        self.plot_action = self._action("Plot", "G", self.toggle_plot, checkable=True)
        self.plot_action.setChecked(self.view_settings.plot_visible)
        self.plot.setVisible(self.view_settings.plot_visible)
        icons = {self.pause_action: QStyle.StandardPixmap.SP_MediaPause,
                 self.step_back_action: QStyle.StandardPixmap.SP_MediaSeekBackward,
                 self.step_action: QStyle.StandardPixmap.SP_MediaSeekForward}
        for action, icon in icons.items():
            action.setIcon(self.style().standardIcon(icon))
        self.transport.set_actions(*icons)
        toolbar = QToolBar("Main", movable=False)
        toolbar.addWidget(self.source_button)
        for action in (self.start_action, self.record_action, self.snapshot_action, None, self.mirror_action,
                       self.plot_action, None, self.settings_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        self.addToolBar(toolbar)
        for action in (self.open_action, self.quit_action, self.pause_action, self.step_back_action,
                       self.step_action):
            self.addAction(action)  # shortcuts work wherever the focus is, even with the transport bar hidden

        self.model_label, self.provider_label = QLabel(), QLabel()
        self.capture_label, self.processing_label, self.faces_label = QLabel(), QLabel(), QLabel()
        self.recording_label = QLabel()
        self.recording_label.setStyleSheet("color: #d62828; font-weight: bold")
        self.recording_label.hide()
        for label in (self.recording_label, self.model_label, self.provider_label, self.capture_label,
                      self.processing_label, self.faces_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.recording_timer = QTimer(self, interval=500)
        self.recording_timer.timeout.connect(self._show_recording_time)
        self._show_stats(None)

    def _action(self, text: str, shortcut: str | QKeySequence.StandardKey, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{text} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})")
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _fill_source_menu(self) -> None:
        """Cameras by name (the one in use checked), the camera's resolution and frame rate, files."""
        self.source_menu.clear()
        cameras = list_cameras()
        current = self.configured_camera(cameras)
        if current not in cameras:
            cameras.append(current)  # the configured camera stays choosable (to retry it) even if not listed
        playing = self.spec.target if self.spec is not None and self.spec.is_camera else None
        for camera in cameras:
            action = self.source_menu.addAction(camera.name or f"Camera {camera.index}",
                                                lambda c=camera: self.choose_camera(c))
            action.setCheckable(True)
            action.setChecked(camera.index == playing)
        self._choice_menu("Camera resolution", RESOLUTIONS, self.settings.resolution,
                          lambda size: "Camera default" if not size[0] else f"{size[0]} × {size[1]}",
                          self.set_camera_resolution)
        self._choice_menu("Camera frame rate", FRAME_RATES, self.view_settings.camera_fps,
                          lambda fps: f"{fps} fps" if fps else "Camera default", self.set_camera_fps)
        self.source_menu.addSeparator()
        self.source_menu.addAction(self.open_action)
        if DEMO_CLIP.is_file():
            self.source_menu.addAction("Demo clip", self.play_demo)

    def _choice_menu(self, title: str, options: tuple[T, ...], current: T, text: Callable[[T], str],
                     slot: Callable[[T], None]) -> None:
        """A submenu of exclusive choices, ``current`` checked, ``slot(option)`` on a pick."""
        menu = self.source_menu.addMenu(title)
        group = QActionGroup(menu)
        for option in options:
            action = menu.addAction(text(option), lambda o=option: slot(o))
            action.setCheckable(True)
            action.setChecked(option == current)
            group.addAction(action)

    # --- model --------------------------------------------------------------------------------------

    def _load_startup_model(self) -> None:
        """The configured model; if it fails, the bundled one on automatic device and precision, with a
        notice that stays until dismissed. The settings then name the model that runs, so the one that
        failed is never saved as if it worked."""
        wanted, fallback = self.settings.model_key, AppSettings().model_key
        for key in dict.fromkeys([wanted, fallback]):
            try:
                model = load_model_as(*key)
            except ModelError as exc:
                problem = str(exc)
                log.error("model %s on %s (precision %s): %s", *key, problem)
                continue
            if key != wanted:
                self.notice.show_notice(f"The configured model could not be used ({problem}); running the "
                                        f"bundled model instead. Choose another under Settings → Model.",
                                        sticky=True)
                defaults = AppSettings()
                self.settings = replace(self.settings, model_path=defaults.model_path, device=defaults.device,
                                        precision=defaults.precision)
            self._install_model(model)
            return
        self.show_message(f"No usable model: {problem}\nChoose a model file under Settings → Model.")

    def _install_model(self, model: LandmarkModel) -> None:
        self.model = model
        if self.worker is None:
            pipeline = FramePipeline(model, self.settings.pipeline)
            self.worker = ProcessingWorker(pipeline, self.settings.draw, self.max_frames, outputs=self.settings.outputs)
            self.worker.frameReady.connect(self._on_frame_ready)
            self.worker.sessionEnded.connect(self._on_session_ended)
            self.worker.recordingStarted.connect(self._on_recording_started)
            self.worker.recordingFinished.connect(self._on_recording_finished)
            self.worker.recordingFailed.connect(self._on_recording_failed)
            self.worker.start()
        else:
            self.worker.set_model(model)
        self.model_label.setText(f"Model: {model.info.name}")
        self.model_label.setToolTip(str(model.info.path))
        self.provider_label.setText(f"Provider: {model.provider}")

    # --- sources ------------------------------------------------------------------------------------

    def start_initial(self, source: str | None) -> None:
        """Start-up: ``source`` if given; else the configured camera, or the demo clip (looping) without one."""
        if source is not None:
            target = parse_source(source)
            if isinstance(target, int):
                self.start_camera(target)
            else:
                self.start_source(SourceSpec(target))
            return
        if self.start_configured_camera() or not DEMO_CLIP.is_file() or self.worker is None:
            return
        reason = self.source_error
        if self.play_demo():
            self.notice.show_notice(f"{reason} Playing the demo clip instead — use Source to pick a camera or "
                                    f"open a video.")

    def start_camera(self, index: int, name: str = "") -> bool:
        return self.start_source(SourceSpec(index, *self.settings.resolution, fps=self.view_settings.camera_fps,
                                            name=name))

    def configured_camera(self, cameras: list[CameraDevice] | None = None) -> CameraDevice:
        """The camera the settings mean: the one with the saved name wherever it is now plugged in (indices
        move when devices are added), else the one at the saved index."""
        cameras = list_cameras() if cameras is None else cameras
        wanted = self.view_settings.camera_name
        for camera in cameras:
            if wanted and camera.name == wanted:
                return camera
        at_index = [c for c in cameras if c.index == self.settings.camera_index]
        return at_index[0] if at_index else CameraDevice(self.settings.camera_index, wanted)

    def start_configured_camera(self) -> bool:
        camera = self.configured_camera()
        return self.start_camera(camera.index, camera.name)

    def choose_camera(self, camera: CameraDevice) -> bool:
        """Switch to ``camera`` and remember it (by index and by name)."""
        self.settings = replace(self.settings, camera_index=camera.index)
        save_settings(self.store, self.settings)
        self._save_view(camera_name=camera.name)
        return self.start_camera(camera.index, camera.name)

    def set_camera_resolution(self, size: tuple[int, int]) -> None:
        self.apply_settings(replace(self.settings, camera_width=size[0], camera_height=size[1]))

    def set_camera_fps(self, fps: int) -> None:
        self._save_view(camera_fps=fps)
        self._restart_camera()

    def _restart_camera(self) -> None:
        """Reopen the running camera with the current settings (a camera cannot change mode while open)."""
        if self.spec is None or not self.spec.is_camera:
            return
        spec = SourceSpec(self.settings.camera_index, *self.settings.resolution, fps=self.view_settings.camera_fps,
                          name=self.spec.name if self.spec.target == self.settings.camera_index else "")
        if self.capture is not None:
            self.start_source(spec)
        else:
            self.spec = spec

    def play_demo(self) -> bool:
        return self.start_source(SourceSpec(DEMO_CLIP, loop=True))

    def open_video_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", str(Path.home()), VIDEO_FILTER)
        if path:
            self.start_source(SourceSpec(Path(path)))

    def start_source(self, spec: SourceSpec) -> bool:
        """Open ``spec`` and start processing it; on failure show why (and how to go on) in the window."""
        self.stop_source()
        self.spec = spec
        if self.worker is None:
            self._update_actions()
            return False
        try:
            source = open_source(spec)
        except SourceError as exc:
            log.warning("%s", exc)
            self.source_error = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
            hint = ("Connect a camera and choose it under Source, or open a video file." if spec.is_camera
                    else "Choose another file.")
            self.show_message(f"{self.source_error}\n{hint}")
            self._update_actions()
            return False
        self.pause_action.setChecked(False)
        self.capture = CaptureThread(source, spec, self.worker, self.view_settings.mirror)
        self.worker.begin_session(self.capture)
        self.view.clear()  # no frame of the previous source lingers
        self.plot.clear()
        self.transport.set_source(source.info if self.capture.seekable else None)
        self.stack.setCurrentWidget(self.view)
        self.setWindowTitle(f"AnchorFace Live — {spec.label}")
        self.statusBar().showMessage(f"Playing {spec.label}" + (" (looping)" if spec.loop else ""), 3000)
        self._update_actions()
        return True

    def stop_source(self) -> None:
        """Stop the running source (a recording in progress is finalised by the worker)."""
        capture, self.capture = self.capture, None
        if capture is not None:
            capture.stop()
            self.worker.end_session(capture)
        self.transport.set_source(None)
        self._show_stats(None)
        self._update_actions()

    def toggle_running(self) -> None:
        if self.capture is not None:
            self.stop_source()
        elif self.spec is not None:
            self.start_source(self.spec)
        else:
            self.start_configured_camera()

    # --- video file transport, mirror, plot -------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.capture is not None and self.capture.seekable:
            self.capture.set_paused(self.pause_action.isChecked())
        self._update_actions()

    def step(self, frames: int) -> None:
        """Pause and show the next (``frames`` = 1) or previous (−1) frame of the file."""
        if self.capture is None or not self.capture.seekable:
            return
        self.pause_action.setChecked(True)
        self.capture.set_paused(True)
        if frames == 1:
            self.capture.step()
        elif self.transport.position is not None:
            self.capture.seek(self.transport.position + frames)
        self._update_actions()

    def seek(self, position: int) -> None:
        """Continue from frame ``position`` of the file (shown at once, also while paused)."""
        if self.capture is not None and self.capture.seekable:
            self.capture.seek(position)

    def toggle_mirror(self) -> None:
        """Flip the picture left–right (a selfie view) from the next frame on, and remember it."""
        self._save_view(mirror=self.mirror_action.isChecked())
        if self.capture is not None:
            self.capture.mirror = self.view_settings.mirror

    def toggle_plot(self) -> None:
        self.plot.setVisible(self.plot_action.isChecked())
        self._save_view(plot_visible=self.plot_action.isChecked())

    def _save_view(self, **changes: object) -> None:
        self.view_settings = replace(self.view_settings, **changes)
        save_view_settings(self.store, self.view_settings)

    def show_message(self, text: str) -> None:
        self.message.show_message(text, DEMO_CLIP.is_file() and self.worker is not None)
        self.stack.setCurrentWidget(self.message)

    def _on_frame_ready(self) -> None:
        shown = self.worker.take_shown() if self.worker else None
        if shown is None or self.capture is None:
            return
        self.view.set_image(shown.image)
        self.snapshot_action.setEnabled(True)
        self._show_stats(shown.stats)
        self.plot.add(sample_of(shown.stats.timestamp, shown.stats.results))
        self.transport.show_position(self.capture.media_position(shown.stats.frame_index))
        self.frameShown.emit(shown.stats)

    def _on_session_ended(self, capture: CaptureThread, reason: str) -> None:
        if capture is self.capture:
            self.capture = None
            self.transport.set_source(None)
            self._show_stats(None)
            self._update_actions()
            if capture.spec.is_camera and reason:
                self.show_message(reason)
            elif reason:
                self.statusBar().showMessage(reason)
        self.sessionStopped.emit(reason)

    def _show_stats(self, stats: FrameStats | None) -> None:
        self.last_stats = stats
        if stats is None:
            self.capture_label.setText("Capture – fps")
            self.processing_label.setText("Processing – fps")
            self.faces_label.setText("Faces: –")
            return
        self.capture_label.setText(f"Capture {stats.capture_fps:.1f} fps")
        self.processing_label.setText(f"Processing {stats.processing_fps:.1f} fps")
        self.faces_label.setText(f"Faces: {stats.faces}")

    def _update_actions(self) -> None:
        running = self.capture is not None
        self.start_action.setChecked(running)
        self.start_action.setText("Stop" if running else "Start")
        self.start_action.setEnabled(self.worker is not None)
        self.record_action.setEnabled(running or self.recording_since is not None)
        self.record_action.setChecked(self.recording_since is not None)
        self.snapshot_action.setEnabled(not self.view.image.isNull())
        seekable = running and self.capture.seekable
        for action in (self.pause_action, self.step_back_action, self.step_action):
            action.setEnabled(seekable)
        if not seekable:
            self.pause_action.setChecked(False)
        paused = self.pause_action.isChecked()
        self.pause_action.setText("Play" if paused else "Pause")
        self.pause_action.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay if paused
                                                            else QStyle.StandardPixmap.SP_MediaPause))

    # --- recording and snapshots ----------------------------------------------------------------------

    def toggle_recording(self) -> None:
        if self.worker is None:
            return
        if self.recording_since is not None:
            self.worker.stop_recording()
        else:
            self.worker.start_recording(Path(self.settings.recording_folder))
        self._update_actions()  # the checked state follows the worker's answer, not the click

    def _on_recording_started(self, video: Path) -> None:
        self.recording_path, self.recording_since = video, time.monotonic()
        self.recording_label.show()
        self._show_recording_time()
        self.recording_timer.start()
        self.statusBar().showMessage(f"Recording to {video}", 3000)
        self._update_actions()

    def _on_recording_finished(self, summary: RecordingSummary) -> None:
        self.recording_since = None
        self.recording_timer.stop()
        self.recording_label.hide()
        if summary.error:
            self.notice.show_notice(f"{summary.error} The {summary.frames} frames recorded before are in "
                                    f"{summary.video}.")
        else:
            self.statusBar().showMessage(f"Saved {summary.frames} frames to {summary.video} "
                                         f"(+ {summary.csv.name} and the JSON sidecar)", 8000)
        self._update_actions()

    def _on_recording_failed(self, message: str) -> None:
        self.notice.show_notice(message)
        self._update_actions()

    def _show_recording_time(self) -> None:
        if self.recording_since is not None:
            seconds = int(time.monotonic() - self.recording_since)
            self.recording_label.setText(f"● REC {seconds // 60:02d}:{seconds % 60:02d}")

    def save_snapshot(self) -> Path | None:
        """Save the annotated frame on screen (full resolution) as a PNG in the recording folder."""
        image = self.view.image
        if image.isNull():
            self.statusBar().showMessage("Nothing to save yet.", 3000)
            return None
        folder = Path(self.settings.recording_folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.notice.show_notice(f"Cannot create the folder {folder}: {exc}")
            return None
        path = unused_path(folder, timestamped_stem(), (".png",)).with_suffix(".png")
        if not image.save(str(path), "PNG"):
            self.notice.show_notice(f"Could not write the snapshot {path}.")
            return None
        self.statusBar().showMessage(f"Snapshot saved to {path}", 5000)
        return path

    # --- settings -------------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """Open the (window-modal, non-blocking) settings dialog; accepted changes apply live."""
        dialog = SettingsDialog(self.settings, self.model, load_model_as, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.settings, dialog.loaded_model))
        dialog.open()
        return dialog

    def apply_settings(self, settings: AppSettings, model: LandmarkModel | None = None) -> None:
        """Persist ``settings`` and apply them without restarting anything that need not restart."""
        old, self.settings = self.settings, settings
        save_settings(self.store, settings)
        if model is not None:
            self._install_model(model)
        if self.worker is not None:
            if settings.pipeline != old.pipeline:
                self.worker.reconfigure(settings.pipeline)
            if settings.draw != old.draw:
                self.worker.set_draw_options(settings.draw)
            if settings.outputs != old.outputs:
                self.worker.set_outputs(settings.outputs)
        if settings.camera_index != old.camera_index:
            self._save_view(camera_name="")  # chosen by index in the dialog: the remembered name no longer applies
        if (settings.camera_index, settings.resolution) != (old.camera_index, old.resolution):
            self._restart_camera()

    # --- closing --------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop capture, finalise any recording and end the worker before the window goes."""
        self.stop_source()
        if self.worker is not None:
            self.worker.shutdown()
            self.worker.wait()
        event.accept()
