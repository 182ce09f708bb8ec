"""The one description of the user-facing processing settings: name, type, range or choices, label, help.

Each :class:`Setting` points at a field of :class:`core.pipeline.PipelineConfig` (a dotted ``path``).
The headless CLI's options (:func:`add_arguments`, :func:`apply_arguments`), the settings dialog's
fields (``app.settings_dialog``) and the settings store's keys and validation (``app.settings``) are
all generated from :data:`PIPELINE_SETTINGS`, so a setting is added in one place and the CLI reaches
everything the dialog does. Defaults are the config classes' own.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

from core.decode import STRATEGIES
from core.detection import DETECTORS
from core.pipeline import PipelineConfig
from core.registry import Registry
from core.smoothing import SMOOTHERS


@dataclass(frozen=True)
class Setting:
    """One setting. ``key`` names it in the store (``processing/<key>``) and on the command line
    (``--<key>`` with ``/`` and ``_`` as ``-``); ``path`` is its field in :class:`PipelineConfig`.

    Numbers have a ``minimum``/``maximum`` (and ``decimals``/``step`` for the dialog); text settings
    have ``choices``, a :class:`core.registry.Registry` whose entries carry their labels. ``shown_for``: a smoother's parameter, shown
    (and used) when that smoother is active. ``enabled_when``: ``(key, value)`` of another setting
    this one only matters for.
    """

    key: str
    path: str
    kind: type
    label: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 0
    step: float = 1.0
    suffix: str = ""
    choices: Registry | None = None
    shown_for: str | None = None
    enabled_when: tuple[str, str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("/", "-").replace("_", "-")

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    def options(self) -> list[str]:
        """The names offered, live from the registry (a choice registered later is offered too)."""
        return list(self.choices) if self.choices is not None else []

    def option_label(self, option: str) -> str:
        """How the settings dialog shows ``option``: its registered label."""
        return self.choices[option].label

    def parse(self, value: Any) -> Any:
        """``value`` (text from a store or a command line, or a number) as this setting's type; ValueError if
        it is not one, out of range, or not offered."""
        if self.choices is not None:
            text = str(value).strip()
            if text not in self.options():
                raise ValueError(f"{value!r} is not one of {', '.join(self.options())}")
            return text
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        try:
            number = self.kind(str(value).strip()) if not isinstance(value, (int, float)) else self.kind(value)
        except ValueError:  # int()'s and float()'s own words ("invalid literal for int() with base 10") are Python's
            raise ValueError(f"not a {'whole number' if self.kind is int else 'number'}: {value!r}") from None
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise ValueError(f"{number} is outside {self.minimum:g}..{self.maximum:g}")
        return number

    def get(self, config: PipelineConfig) -> Any:
        value: Any = config
        for part in self.path.split("."):
            value = getattr(value, part)
        return value

    def set(self, config: PipelineConfig, value: Any) -> PipelineConfig:
        """A copy of ``config`` with this setting at ``value`` (the config classes validate it again)."""
        return _replace_path(config, self.path.split("."), value)


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    return dataclasses.replace(obj, **{parts[0]: _replace_path(getattr(obj, parts[0]), parts[1:], value)})


MAX_DETECTION_INTERVAL = 300
#: Most faces one can ask to follow: 32 crops are one batch of about 55 ms on the 2-core CPU.
MAX_FACES = 32

PIPELINE_SETTINGS: tuple[Setting, ...] = (
    Setting("smoothing", "smoothing", str, "Smoothing", "temporal filter of the landmarks",
            choices=SMOOTHERS),
    Setting("kalman/measurement_noise", "kalman.measurement_noise", float, "Measurement noise (face sizes)",
            "Kalman: expected landmark noise, in face sizes (higher = smoother, slower)",
            1e-4, 0.1, decimals=4, step=0.001, shown_for="kalman"),
    Setting("kalman/process_noise", "kalman.process_noise", float, "Process noise (face sizes / s²)",
            "Kalman: expected head acceleration, in face sizes per s² (higher = follows faster)",
            1e-4, 1.0, decimals=4, step=0.001, shown_for="kalman"),
    Setting("kalman/point_noise", "kalman.point_noise", float, "Per-point noise from uncertainty",
            "Kalman: exponent by which each point's anchor spread scales its measurement noise "
            "(0 = one noise for the whole face)", 0.0, 2.0, decimals=2, step=0.25, shown_for="kalman"),
    Setting("one-euro/min_cutoff", "one_euro.min_cutoff", float, "Minimum cutoff (Hz)",
            "One-Euro: cutoff frequency of a still face (lower = smoother)", 0.01, 30.0, decimals=2, step=0.1,
            shown_for="one-euro"),
    Setting("one-euro/beta", "one_euro.beta", float, "Speed coefficient β",
            "One-Euro: how fast the cutoff rises with speed (higher = less lag)", 0.0, 1000.0, decimals=1,
            shown_for="one-euro"),
    Setting("one-euro/d_cutoff", "one_euro.d_cutoff", float, "Speed cutoff (Hz)",
            "One-Euro: cutoff frequency of the speed estimate", 0.01, 30.0, decimals=2, step=0.1,
            shown_for="one-euro"),
    Setting("strategy", "strategy", str, "Anchor aggregation", "how the anchors' predictions are combined",
            choices=STRATEGIES),
    Setting("threshold", "threshold", float, "Confidence threshold",
            "anchors below this confidence are left out of the weighted mean", 0.0, 1.0, decimals=2, step=0.05,
            enabled_when=("strategy", "weighted")),
    Setting("model_passes", "model_passes", int, "Model passes per face",
            "2: also run the mirrored crop and average both (measured lower landmark error for twice the model "
            "time; for recordings and batch rather than the live view)", 1, 2, suffix=" passes"),
    Setting("max_faces", "tracker.max_faces", int, "Follow at most",
            "faces followed at once; each costs a model run per frame (raise it for a crowd, an audience, a "
            "class)", 1, MAX_FACES, suffix=" faces"),
    Setting("detection_interval", "tracker.detection_interval", int, "Detect new faces every",
            "frames between two searches for new faces", 1, MAX_DETECTION_INTERVAL, suffix=" frames"),
    Setting("search_delay", "tracker.search_delay", float, "Look for new faces within",
            "seconds: while no face is tracked, the time between two searches (full range for small faces: 3x "
            "as long; 0 = every frame); while faces are tracked, the soonest a search runs when the picture "
            "changes away from them", 0.0, 2.0, decimals=2, step=0.05, suffix=" s"),
    Setting("detector", "detector", str, "Face detector", "finds faces to start tracks on",
            choices=DETECTORS),
)
SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in PIPELINE_SETTINGS}


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose every error is one plain ``error:`` line (exit code 2), like the errors
    the commands themselves print, instead of argparse's usage block followed by the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One option per setting; each defaults to None, meaning "keep the configured value"."""
    defaults = PipelineConfig()
    for setting in PIPELINE_SETTINGS:
        default = setting.get(defaults)
        if setting.choices is not None:
            parser.add_argument(setting.flag, dest=setting.dest, choices=setting.options(),
                                help=f"{setting.help} (default {default})")
        else:
            parser.add_argument(setting.flag, dest=setting.dest, type=_argument_type(setting), metavar="N",
                                help=f"{setting.help}; {setting.minimum:g}..{setting.maximum:g} (default {default:g})")


def _argument_type(setting: Setting) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def given_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by key."""
    return {s.key: getattr(args, s.dest) for s in PIPELINE_SETTINGS if getattr(args, s.dest, None) is not None}


def apply_arguments(config: PipelineConfig, args: argparse.Namespace) -> PipelineConfig:
    """``config`` with every setting given on the command line applied."""
    for key, value in given_arguments(args).items():
        config = SETTINGS_BY_KEY[key].set(config, value)
    return config
