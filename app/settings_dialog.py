"""The settings dialog: edits an :class:`AppSettings` and validates a new model before accepting it.

A model file is only accepted once it has really been loaded (the core loader checks the whole model
contract), so a bad file can never replace a working model: the loader's message appears in the
dialog, the dialog stays open, and the window keeps running the previous model. The model loaded
during validation is handed to the window, so an accepted file is not loaded twice.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                             QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QStackedWidget,
                             QTabWidget, QVBoxLayout, QWidget)

from app.settings import MAX_CAMERA_INDEX, RESOLUTIONS, AppSettings, draw_switches
from core.config import PIPELINE_SETTINGS, SETTINGS_BY_KEY, Setting
from core.pipeline import PipelineConfig
from core.run_options import SINK_OPTIONS, SinkOptions
from core.runtime import DEFAULT_MODEL_PATH, LandmarkModel, ModelError, ModelInfo
from core.runtime.precision import PRECISION_LABELS

#: Loads (and thereby validates) a model: ``(path, device, precision) -> LandmarkModel``, raising ModelError.
ModelLoader = Callable[[Path, str, str], LandmarkModel]
ModelKey = tuple[Path, str, str]

DEVICE_LABELS = {"auto": "Automatic (CUDA when it works, else CPU)", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)"}
DRAW_LABELS = {"points": "Landmark points", "contours": "Contours (jaw, brows, eyes, nose, lips)",
               "box": "Face box", "track_id": "Track id", "confidence": "Confidence",
               "pose_axes": "Head pose axes and angles", "fps": "Frame rate"}


def describe_model(info: ModelInfo, provider: str | None = None) -> str:
    """One line about a model for the dialog: name, scheme, points, measured accuracy, device."""
    nme = f", validation NME {100 * info.val_nme:.2f}%" if info.val_nme is not None else ""
    on = f", running on {provider}" if provider else ""
    return f"{info.name} ({info.model_type}, {info.scheme}, {info.num_points} points{nme}){on}"


class SettingsDialog(QDialog):
    """Edits a copy of the settings; after ``accepted``, read :attr:`settings` and :attr:`loaded_model`."""

    def __init__(self, settings: AppSettings, model: LandmarkModel | None, load: ModelLoader,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.initial = settings
        self.settings = settings
        self.loaded_model: LandmarkModel | None = None  # set when the model, device or precision changed and loaded
        self._loaded_key: ModelKey | None = None
        self._load = load
        tabs = QTabWidget()
        tabs.addTab(self._camera_tab(), "Camera")
        tabs.addTab(self._model_tab(model), "Model")
        tabs.addTab(self._processing_tab(), "Processing")
        tabs.addTab(self._overlay_tab(), "Overlay")
        tabs.addTab(self._recording_tab(), "Recording")
        self.tabs = tabs
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.show_settings(AppSettings()))
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
        self.show_settings(settings)

    # --- tabs -------------------------------------------------------------------------------------

    def _camera_tab(self) -> QWidget:
        self.camera_index = QSpinBox(minimum=0, maximum=MAX_CAMERA_INDEX)
        self.resolution = QComboBox()
        for width, height in RESOLUTIONS:
            self.resolution.addItem("Camera default" if not width else f"{width} × {height}", (width, height))
        form = QFormLayout()
        form.addRow("Camera index", self.camera_index)
        form.addRow("Resolution", self.resolution)
        return _page(form)

    def _model_tab(self, model: LandmarkModel | None) -> QWidget:
        self.model_path = QLineEdit(placeholderText=f"bundled model ({DEFAULT_MODEL_PATH.name})")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        bundled = QPushButton("Use bundled")
        bundled.clicked.connect(lambda: self.model_path.clear())
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        row.addWidget(bundled)
        self.device = QComboBox()
        for device, label in DEVICE_LABELS.items():
            self.device.addItem(label, device)
        self.precision = QComboBox()
        for precision, label in PRECISION_LABELS.items():
            self.precision.addItem(label, precision)
        self.current_model = QLabel(describe_model(model.info, model.provider) if model else "no model loaded",
                                    wordWrap=True)
        self.model_error = QLabel(wordWrap=True)
        self.model_error.setStyleSheet("color: #c0392b; font-weight: bold")
        self.model_error.hide()
        form = QFormLayout()
        form.addRow("Model file", row)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("Active model", self.current_model)
        form.addRow(self.model_error)
        return _page(form)

    def _processing_tab(self) -> QWidget:
        """One field per :data:`core.config.PIPELINE_SETTINGS` entry; a smoother's parameters sit on a
        page shown while that smoother is chosen."""
        self.fields: dict[str, QWidget] = {s.key: setting_widget(s) for s in PIPELINE_SETTINGS}
        smoothing = self.fields["smoothing"]
        pages = QStackedWidget()
        page_forms: dict[str, QFormLayout] = {}
        for method in SETTINGS_BY_KEY["smoothing"].options():
            page_forms[method] = QFormLayout()
            page_forms[method].setContentsMargins(0, 0, 0, 0)
            pages.addWidget(_page(page_forms[method]))
        smoothing.currentIndexChanged.connect(pages.setCurrentIndex)
        form = QFormLayout()
        for setting in PIPELINE_SETTINGS:
            widget = self.fields[setting.key]
            if setting.shown_for is not None:
                page_forms[setting.shown_for].addRow(setting.label, widget)
                continue
            form.addRow(setting.label, widget)
            if setting.key == "smoothing":
                form.addRow(pages)
            if setting.enabled_when is not None:
                other, wanted = setting.enabled_when
                combo = self.fields[other]
                combo.currentIndexChanged.connect(
                    lambda _=0, w=widget, c=combo, v=wanted: w.setEnabled(c.currentData() == v))
        return _page(form)

    def _overlay_tab(self) -> QWidget:
        self.draw_boxes = {name: QCheckBox(DRAW_LABELS.get(name, name)) for name in draw_switches()}
        layout = QVBoxLayout()
        for box in self.draw_boxes.values():
            layout.addWidget(box)
        layout.addStretch()
        return _page(layout)

    def _recording_tab(self) -> QWidget:
        self.recording_folder = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.recording_folder, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Save recordings and snapshots in", row)
        self.output_fields: dict[str, QCheckBox | QLineEdit] = {}
        for option in SINK_OPTIONS:  # generated: an output option is a field and its row in core.run_options
            widget = QCheckBox() if option.is_switch else QLineEdit(placeholderText=option.placeholder)
            widget.setToolTip(option.help)
            self.output_fields[option.key] = widget
            form.addRow(option.label, widget)
        self.output_error = QLabel()
        form.addRow(self.output_error)
        return _page(form)

    # --- values -------------------------------------------------------------------------------------

    def show_settings(self, settings: AppSettings) -> None:
        """Put ``settings`` into the widgets."""
        self.camera_index.setValue(settings.camera_index)
        select_data(self.resolution, settings.resolution)
        self.model_path.setText(settings.model_path)
        select_data(self.device, settings.device)
        select_data(self.precision, settings.precision)
        for setting in PIPELINE_SETTINGS:
            widget, value = self.fields[setting.key], setting.get(settings.pipeline)
            if isinstance(widget, QComboBox):
                select_data(widget, value)
            else:
                widget.setValue(value)
        for name, box in self.draw_boxes.items():
            box.setChecked(getattr(settings.draw, name))
        self.recording_folder.setText(settings.recording_folder)
        for key, widget in self.output_fields.items():
            if isinstance(widget, QCheckBox):
                widget.setChecked(getattr(settings.outputs, key))
            else:
                widget.setText(getattr(settings.outputs, key))

    def edited_settings(self) -> AppSettings:
        """The settings as the widgets show them now."""
        width, height = self.resolution.currentData()
        return AppSettings(
            camera_index=self.camera_index.value(), camera_width=width, camera_height=height,
            model_path=self.model_path.text().strip(), device=self.device.currentData(),
            precision=self.precision.currentData(),
            pipeline=self.edited_pipeline(),
            draw=replace(self.initial.draw, **{n: box.isChecked() for n, box in self.draw_boxes.items()}),
            recording_folder=self.recording_folder.text().strip() or AppSettings().recording_folder,
            outputs=SinkOptions(**{key: widget.isChecked() if isinstance(widget, QCheckBox) else widget.text().strip()
                                   for key, widget in self.output_fields.items()}),
        )

    def edited_pipeline(self) -> PipelineConfig:
        """The initial pipeline settings with every field's value applied."""
        config = self.initial.pipeline
        for setting in PIPELINE_SETTINGS:
            widget = self.fields[setting.key]
            config = setting.set(config, widget.currentData() if isinstance(widget, QComboBox) else widget.value())
        return config

    def accept(self) -> None:
        """Accept only if a changed model file, device or precision really loads; otherwise show why and stay open."""
        edited = self.edited_settings()
        try:
            for option in SINK_OPTIONS:
                option.parse(getattr(edited.outputs, option.key))
        except ValueError as exc:
            self.output_error.setText(str(exc))
            return
        if edited.model_key != self.initial.model_key:
            if not self._try_model(edited.model_key):
                return
        else:
            self.loaded_model = None
        self.settings = edited
        super().accept()

    def _try_model(self, key: ModelKey) -> bool:
        if self._loaded_key == key:
            return True
        try:
            model = self._load(*key)
        except ModelError as exc:
            self.loaded_model, self._loaded_key = None, None
            self.model_error.setText(f"This model cannot be used: {exc}\nThe current model stays active.")
            self.model_error.show()
            self.tabs.setCurrentIndex(1)
            return False
        self.loaded_model, self._loaded_key = model, key
        self.model_error.hide()
        self.current_model.setText(describe_model(model.info, model.provider))
        return True

    def _browse_model(self) -> None:
        start = self.model_path.text() or str(DEFAULT_MODEL_PATH.parent)
        path, _ = QFileDialog.getOpenFileName(self, "Choose an AnchorFace model", start, "ONNX models (*.onnx)")
        if path:
            self.model_path.setText(path)
            self._try_model((Path(path), self.device.currentData(), self.precision.currentData()))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for recordings", self.recording_folder.text())
        if folder:
            self.recording_folder.setText(folder)


def setting_widget(setting: Setting) -> QWidget:
    """The input for one setting: a list of its choices, or a spin box with its range and tooltip."""
    if setting.choices is not None:
        widget: QWidget = QComboBox()
        for option in setting.options():
            widget.addItem(setting.option_label(option), option)
    elif setting.kind is int:
        widget = QSpinBox(minimum=int(setting.minimum), maximum=int(setting.maximum), suffix=setting.suffix)
    else:
        widget = QDoubleSpinBox(minimum=setting.minimum, maximum=setting.maximum, decimals=setting.decimals,
                                singleStep=setting.step, suffix=setting.suffix)
    widget.setToolTip(setting.help[0].upper() + setting.help[1:])
    return widget


def select_data(combo: QComboBox, value: object) -> None:
    """Select the item whose data equals ``value`` (``findData`` cannot compare Python tuples)."""
    for index in range(combo.count()):
        if combo.itemData(index) == value:
            combo.setCurrentIndex(index)
            return
    raise ValueError(f"{value!r} is not offered in {combo.objectName() or 'the list'}")


def _page(layout: QFormLayout | QVBoxLayout) -> QWidget:
    page = QWidget()
    page.setLayout(layout)
    return page

