"""The app's persistent settings: one record, read from and written to QSettings with validation.

QSettings hands back whatever the store holds (strings from an ini file, garbage after a hand edit or
a crash mid-write), so every value is parsed and range-checked here, once. A bad value falls back to
its default and yields a warning the window shows, instead of an exception at start-up. Defaults come
from the core configuration classes, so each setting has exactly one default in the code base; the
processing settings' keys, types and ranges come from :data:`core.config.PIPELINE_SETTINGS`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QSettings, QStandardPaths

from core.config import PIPELINE_SETTINGS, SETTINGS_BY_KEY
from core.draw import DrawOptions
from core.pipeline import PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, DEVICES, PRECISIONS
from core.run_options import SINK_OPTIONS, SinkOptions, as_bool

ORGANIZATION = "AnchorFace"
SINK_OPTIONS_BY_KEY = {option.key: option for option in SINK_OPTIONS}
APPLICATION = "AnchorFace Live"

#: Capture resolutions offered for cameras; (0, 0) keeps whatever the camera delivers by default.
RESOLUTIONS: tuple[tuple[int, int], ...] = ((0, 0), (640, 480), (1280, 720), (1920, 1080))
#: Highest camera index the settings accept (operating systems number cameras from 0).
MAX_CAMERA_INDEX = 15


def default_recording_folder() -> str:
    """``<the user's videos folder>/AnchorFace Live`` (home when the platform reports no videos folder)."""
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())
    return str(Path(movies) / APPLICATION)


@dataclass(frozen=True)
class AppSettings:
    """Everything the settings dialog edits. ``model_path`` "" means the bundled model; ``pipeline`` is
    handed to :class:`core.pipeline.FramePipeline` as it is."""

    camera_index: int = 0
    camera_width: int = 0
    camera_height: int = 0
    model_path: str = ""
    device: str = "auto"
    precision: str = "auto"
    pipeline: PipelineConfig = PipelineConfig()
    draw: DrawOptions = field(default_factory=DrawOptions)
    recording_folder: str = field(default_factory=default_recording_folder)
    #: The outputs' options (stream target, CSV columns), the same object headless and batch runs use.
    outputs: SinkOptions = SinkOptions()

    def overridden(self, overrides: dict[str, Any]) -> "AppSettings":
        """A copy with ``overrides`` applied: field names of this class, keys of
        :data:`core.config.PIPELINE_SETTINGS` or fields of :class:`SinkOptions` (command-line options
        for one run)."""
        pipeline, outputs = self.pipeline, {}
        fields_: dict[str, Any] = {}
        for name, value in overrides.items():
            if name in SETTINGS_BY_KEY:
                pipeline = SETTINGS_BY_KEY[name].set(pipeline, value)
            elif name in SINK_OPTIONS_BY_KEY:
                outputs[name] = value
            else:
                fields_[name] = value
        return replace(self, pipeline=pipeline, outputs=replace(self.outputs, **outputs), **fields_)

    @property
    def model_file(self) -> Path:
        """The model these settings mean: the chosen file, or the bundled one."""
        return Path(self.model_path) if self.model_path else DEFAULT_MODEL_PATH

    @property
    def model_key(self) -> tuple[Path, str, str]:
        """What loading the model takes: ``(file, device, precision)``; a change means a new session."""
        return self.model_file, self.device, self.precision

    @property
    def resolution(self) -> tuple[int, int]:
        return self.camera_width, self.camera_height


# --- parsing ------------------------------------------------------------------------------------

def _number(kind: type, low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = kind(str(value).strip()) if not isinstance(value, (int, float)) else kind(value)
        if not low <= number <= high:  # also rejects NaN
            raise ValueError(f"{number} is outside {low}..{high}")
        return number
    return parse


def _choice(options: tuple[str, ...] | list[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return str(value)
    return parse


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not text: {value!r}")
    return value


def _resolution(value: Any) -> tuple[int, int]:
    width, _, height = str(value).partition("x")
    size = int(width), int(height)
    if size not in RESOLUTIONS:
        raise ValueError(f"{value!r} is not one of the offered resolutions")
    return size


def draw_switches() -> list[str]:
    """The on/off layers of :class:`core.draw.DrawOptions` (its boolean fields), in declaration order."""
    defaults = DrawOptions()
    return [f.name for f in fields(DrawOptions) if isinstance(getattr(defaults, f.name), bool)]


# --- the store ----------------------------------------------------------------------------------

def load_settings(store: QSettings) -> tuple[AppSettings, list[str]]:
    """Read the settings; returns them with one warning per value (or store) that had to be replaced."""
    defaults = AppSettings()
    problem = "not a text file" if not_text(store) else store.status().name
    if problem != QSettings.Status.NoError.name:
        return defaults, [f"The settings file {store.fileName()} could not be read ({problem}); "
                          f"using the default settings."]
    warnings: list[str] = []

    def read(key: str, default: Any, parse: Callable[[Any], Any]) -> Any:
        if not store.contains(key):
            return default
        raw = store.value(key)
        try:
            return parse(raw)
        except (TypeError, ValueError) as exc:
            warnings.append(f"Setting {key} = {raw!r} is invalid ({exc}); using the default {default!r}.")
            return default

    pipeline = defaults.pipeline
    for setting in PIPELINE_SETTINGS:
        pipeline = setting.set(pipeline, read(f"processing/{setting.key}", setting.get(pipeline), setting.parse))
    outputs = replace(defaults.outputs, **{o.key: read(o.store, getattr(defaults.outputs, o.key), o.parse)
                                           for o in SINK_OPTIONS})
    draw = replace(defaults.draw, **{name: read(f"draw/{name}", getattr(defaults.draw, name), as_bool)
                                     for name in draw_switches()})
    width, height = read("camera/resolution", defaults.resolution, _resolution)
    settings = AppSettings(
        camera_index=read("camera/index", defaults.camera_index, _number(int, 0, MAX_CAMERA_INDEX)),
        camera_width=width, camera_height=height,
        model_path=read("model/path", defaults.model_path, _text),
        device=read("model/device", defaults.device, _choice(DEVICES)),
        precision=read("model/precision", defaults.precision, _choice(PRECISIONS)),
        pipeline=pipeline,
        draw=draw,
        recording_folder=read("recording/folder", defaults.recording_folder, _text) or defaults.recording_folder,
        outputs=outputs,
    )
    return settings, warnings


def not_text(store: QSettings) -> bool:
    """An ini store whose file is binary garbage: QSettings reads it as empty (or as junk keys) and
    reports no error at all, so it is checked here (UTF-8 text without NUL bytes, as Qt writes it).
    The native format is an ini file too except on Windows (registry) and macOS (plist)."""
    path = Path(store.fileName())
    native_ini = store.format() == QSettings.Format.NativeFormat and not sys.platform.startswith(("win", "darwin"))
    if not (store.format() == QSettings.Format.IniFormat or native_ini) or not path.is_file():
        return False
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\0" in data


def save_settings(store: QSettings, settings: AppSettings) -> None:
    """Write every setting (a store that could not be parsed is replaced as a whole)."""
    if store.status() != QSettings.Status.NoError or not_text(store):
        store.clear()
    store.setValue("camera/index", settings.camera_index)
    store.setValue("camera/resolution", f"{settings.camera_width}x{settings.camera_height}")
    store.setValue("model/path", settings.model_path)
    store.setValue("model/device", settings.device)
    store.setValue("model/precision", settings.precision)
    for setting in PIPELINE_SETTINGS:
        store.setValue(f"processing/{setting.key}", setting.get(settings.pipeline))
    for name in draw_switches():
        store.setValue(f"draw/{name}", bool(getattr(settings.draw, name)))
    store.setValue("recording/folder", settings.recording_folder)
    for option in SINK_OPTIONS:
        store.setValue(option.store, getattr(settings.outputs, option.key))
    store.sync()
