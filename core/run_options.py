"""One run's options in one object, and the output options described once for every host.

:class:`RunOptions` is what the window's settings, ``python main.py --headless`` and ``python main.py
batch`` each build and hand down, instead of a dozen parameters threaded through every layer; its
:meth:`RunOptions.check` validates every option that needs no file (the stream host is looked up), so
callers run it before any output is opened. :class:`SinkOptions` holds the options of the outputs
(``core.sinks``), and :data:`SINK_OPTIONS` describes each of them once — flag, label, help, settings
key, validation — so the CLI options of both commands (:func:`add_sink_arguments`), the settings
dialog's Recording rows and the settings store are generated from it: an output option is one field of
:class:`SinkOptions` plus its row here.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.io.streaming import parse_target, resolve_target
from core.io.table import DEFAULT_GROUPS, WITH_UNCERTAINTY, ColumnGroup
from core.pipeline import PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, DEVICES
from core.runtime.precision import check_precision


@dataclass(frozen=True)
class OutputPaths:
    """Where a run writes: landmarks CSV, its JSON sidecar, the annotated video (None = not written).

    A sidecar needs the CSV (it describes it); the video is optional.
    """

    landmarks: Path | None = None
    sidecar: Path | None = None
    video: Path | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.landmarks, self.sidecar, self.video) if p is not None]


def stream_target(value: Any) -> str:
    """"" (off) or a well-formed ``HOST:PORT``, stripped; ValueError otherwise (the host is looked up
    only by :meth:`RunOptions.check`, since a settings field is edited offline too)."""
    if not isinstance(value, str):
        raise ValueError(f"not text: {value!r}")
    text = value.strip()
    if text:
        parse_target(text)
    return text


def as_bool(value: Any) -> bool:
    """A yes/no value from a settings store (text there) or a checkbox; ValueError for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


@dataclass(frozen=True)
class SinkOptions:
    """How the outputs behave besides where they go: the same for the window, headless and batch."""

    #: ``HOST:PORT`` every frame's faces are streamed to as OSC (``core.io.streaming``); "" = off.
    stream: str = ""
    #: Add each point's uncertainty (``u0 … uL-1``, pixels) to the landmarks CSV.
    uncertainty_columns: bool = False

    def columns(self) -> tuple[ColumnGroup, ...]:
        """The CSV's column groups these options ask for."""
        return WITH_UNCERTAINTY if self.uncertainty_columns else DEFAULT_GROUPS


@dataclass(frozen=True)
class SinkOption:
    """One field of :class:`SinkOptions` as users meet it: ``--flag`` on both commands, a row of the
    settings dialog's Recording tab (``label``; a checkbox for a yes/no field, a text field otherwise,
    with ``placeholder``), and ``store`` as its settings key. ``parse`` validates a value from any of
    them (ValueError)."""

    key: str
    label: str
    help: str
    store: str
    parse: Callable[[Any], Any]
    metavar: str | None = None
    placeholder: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def argument(self, text: str) -> Any:
        """argparse type: :attr:`parse`, its ValueError as argparse's one-line usage error."""
        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    @property
    def is_switch(self) -> bool:
        return isinstance(getattr(SinkOptions(), self.key), bool)


SINK_OPTIONS: tuple[SinkOption, ...] = (
    SinkOption("stream", "Stream live data (OSC) to",
               "send every frame's faces (landmarks, pose, position, face state, uncertainty) as OSC over UDP "
               "to HOST:PORT, e.g. 127.0.0.1:9000 (README: Live streaming)",
               "streaming/target", stream_target, metavar="HOST:PORT", placeholder="off (e.g. 127.0.0.1:9000)"),
    SinkOption("uncertainty_columns", "Uncertainty columns in the CSV",
               "add each landmark's uncertainty (u0, u1, ... in pixels) to the landmarks CSV",
               "recording/uncertainty_columns", as_bool),
)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (``--max-frames`` of both commands)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_sink_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One option per :data:`SINK_OPTIONS` row; each defaults to None ("keep the configured value")."""
    for option in SINK_OPTIONS:
        if option.is_switch:
            parser.add_argument(option.flag, dest=option.key, action="store_const", const=True, help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.key, type=option.argument, metavar=option.metavar,
                                help=option.help)


def given_sink_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The output options given on the command line, by :class:`SinkOptions` field."""
    return {o.key: getattr(args, o.key) for o in SINK_OPTIONS if getattr(args, o.key, None) is not None}


def sink_options(args: argparse.Namespace, base: SinkOptions = SinkOptions()) -> SinkOptions:
    """``base`` with the output options given on the command line applied."""
    return dataclasses.replace(base, **given_sink_arguments(args))


@dataclass(frozen=True)
class RunOptions:
    """Everything one run of one source needs besides a loaded model: the one object each host builds.

    ``model``, ``device`` and ``precision`` say which model to load where the caller has not loaded it
    already (a batch worker loads once for many runs).
    """

    source: str
    outputs: OutputPaths = OutputPaths()
    sinks: SinkOptions = SinkOptions()
    overwrite: bool = False
    max_frames: int | None = None
    model: Path = DEFAULT_MODEL_PATH
    device: str = "auto"
    pipeline: PipelineConfig = PipelineConfig()
    precision: str = "auto"

    def check(self) -> None:
        """Validate every option that needs no output file, the stream host looked up; ValueError with
        the option's own words. Callers run it before any output is created or truncated."""
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max frames must be at least 1, got {self.max_frames}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        check_precision(self.precision)
        if self.outputs.landmarks is None and (self.outputs.video or self.outputs.sidecar):
            raise ValueError("a video or sidecar output needs a landmarks CSV output too")
        for option in SINK_OPTIONS:
            option.parse(getattr(self.sinks, option.key))
        if self.sinks.stream:
            resolve_target(self.sinks.stream)
