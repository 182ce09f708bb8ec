"""The app's persistent settings: one record, read from and written to QSettings with validation.

QSettings hands back whatever the store holds (strings from an ini file, garbage after a hand edit or
a crash mid-write), so every value is parsed and range-checked here, once. A bad value falls back to
its default and yields a warning the window shows, instead of an exception at start-up. Defaults come
from the core configuration classes, so each setting has exactly one default in the code base.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QSettings, QStandardPaths

from core.decode import STRATEGIES
from core.draw import DrawOptions
from core.pipeline import PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, DEVICES
from core.smoothing import SMOOTHERS
from core.tracker import TrackerConfig

ORGANIZATION = "AnchorFace"
APPLICATION = "AnchorFace Live"

#: Capture resolutions offered for cameras; (0, 0) keeps whatever the camera delivers by default.
RESOLUTIONS: tuple[tuple[int, int], ...] = ((0, 0), (640, 480), (1280, 720), (1920, 1080))
#: Highest camera index the settings accept (operating systems number cameras from 0).
MAX_CAMERA_INDEX = 15
MAX_DETECTION_INTERVAL = 300


@dataclass(frozen=True)
class SmoothingParam:
    """One tunable smoother parameter as the dialog shows it; its default is the smoother's own."""

    name: str
    label: str
    minimum: float
    maximum: float
    decimals: int
    step: float

    def default(self, method: str) -> float:
        return float(getattr(SMOOTHERS[method](), self.name))


#: The parameters the dialog exposes per smoothing method (the rest keep the core defaults).
SMOOTHING_PARAMS: dict[str, tuple[SmoothingParam, ...]] = {
    "kalman": (SmoothingParam("measurement_noise", "Measurement noise (face sizes)", 1e-4, 0.1, 4, 0.001),
               SmoothingParam("process_noise", "Process noise (face sizes / s²)", 1e-4, 1.0, 4, 0.001)),
    "one-euro": (SmoothingParam("min_cutoff", "Minimum cutoff (Hz)", 0.01, 30.0, 2, 0.1),
                 SmoothingParam("beta", "Speed coefficient β", 0.0, 1000.0, 1, 1.0),
                 SmoothingParam("d_cutoff", "Speed cutoff (Hz)", 0.01, 30.0, 2, 0.1)),
    "none": (),
}


def default_smoothing_params() -> dict[str, dict[str, float]]:
    return {method: {p.name: p.default(method) for p in SMOOTHING_PARAMS.get(method, ())} for method in SMOOTHERS}


def default_recording_folder() -> str:
    """``<the user's videos folder>/AnchorFace Live`` (home when the platform reports no videos folder)."""
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())
    return str(Path(movies) / APPLICATION)


_PIPELINE = PipelineConfig()


@dataclass(frozen=True)
class AppSettings:
    """Everything the settings dialog edits. ``model_path`` "" means the bundled model."""

    camera_index: int = 0
    camera_width: int = 0
    camera_height: int = 0
    model_path: str = ""
    device: str = "auto"
    smoothing: str = _PIPELINE.smoothing
    smoothing_params: dict[str, dict[str, float]] = field(default_factory=default_smoothing_params)
    threshold: float = _PIPELINE.threshold
    strategy: str = _PIPELINE.strategy
    detection_interval: int = TrackerConfig().detection_interval
    draw: DrawOptions = field(default_factory=DrawOptions)
    recording_folder: str = field(default_factory=default_recording_folder)

    def pipeline_config(self, base: PipelineConfig = _PIPELINE) -> PipelineConfig:
        """``base`` with the dialog's processing settings applied (what ``FramePipeline.reconfigure`` takes)."""
        params = self.smoothing_params
        return replace(base, strategy=self.strategy, threshold=self.threshold, smoothing=self.smoothing,
                       kalman=replace(base.kalman, **params.get("kalman", {})),
                       one_euro=replace(base.one_euro, **params.get("one-euro", {})),
                       tracker=replace(base.tracker, detection_interval=self.detection_interval))

    @property
    def model_file(self) -> Path:
        """The model these settings mean: the chosen file, or the bundled one."""
        return Path(self.model_path) if self.model_path else DEFAULT_MODEL_PATH

    @property
    def resolution(self) -> tuple[int, int]:
        return self.camera_width, self.camera_height


# --- parsing ------------------------------------------------------------------------------------

def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


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
    if store.status() != QSettings.Status.NoError:
        return defaults, [f"The settings file {store.fileName()} could not be read ({store.status().name}); "
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

    params = default_smoothing_params()
    for method in SMOOTHERS:
        for spec in SMOOTHING_PARAMS.get(method, ()):
            params[method][spec.name] = read(f"processing/{method}/{spec.name}", params[method][spec.name],
                                             _number(float, spec.minimum, spec.maximum))
    draw = replace(defaults.draw, **{name: read(f"draw/{name}", getattr(defaults.draw, name), _as_bool)
                                     for name in draw_switches()})
    width, height = read("camera/resolution", defaults.resolution, _resolution)
    settings = AppSettings(
        camera_index=read("camera/index", defaults.camera_index, _number(int, 0, MAX_CAMERA_INDEX)),
        camera_width=width, camera_height=height,
        model_path=read("model/path", defaults.model_path, _text),
        device=read("model/device", defaults.device, _choice(DEVICES)),
        smoothing=read("processing/smoothing", defaults.smoothing, _choice(list(SMOOTHERS))),
        smoothing_params=params,
        threshold=read("processing/threshold", defaults.threshold, _number(float, 0.0, 1.0)),
        strategy=read("processing/strategy", defaults.strategy, _choice(STRATEGIES)),
        detection_interval=read("processing/detection_interval", defaults.detection_interval,
                                _number(int, 1, MAX_DETECTION_INTERVAL)),
        draw=draw,
        recording_folder=read("recording/folder", defaults.recording_folder, _text) or defaults.recording_folder,
    )
    return settings, warnings


def save_settings(store: QSettings, settings: AppSettings) -> None:
    """Write every setting (a store that could not be parsed is replaced as a whole)."""
    if store.status() != QSettings.Status.NoError:
        store.clear()
    store.setValue("camera/index", settings.camera_index)
    store.setValue("camera/resolution", f"{settings.camera_width}x{settings.camera_height}")
    store.setValue("model/path", settings.model_path)
    store.setValue("model/device", settings.device)
    store.setValue("processing/smoothing", settings.smoothing)
    for method, values in settings.smoothing_params.items():
        for name, value in values.items():
            store.setValue(f"processing/{method}/{name}", float(value))
    store.setValue("processing/threshold", float(settings.threshold))
    store.setValue("processing/strategy", settings.strategy)
    store.setValue("processing/detection_interval", settings.detection_interval)
    for name in draw_switches():
        store.setValue(f"draw/{name}", bool(getattr(settings.draw, name)))
    store.setValue("recording/folder", settings.recording_folder)
    store.sync()
