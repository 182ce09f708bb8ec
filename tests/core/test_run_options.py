"""The run options: every output option is one field with one row, reachable from both commands and
tried by every host's tests, and :meth:`RunOptions.check` refuses each bad option before any file is
opened."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from batch.cli import build_parser as batch_parser
from core.run_options import SINK_OPTIONS, OutputPaths, RunOptions, SinkOptions, sink_options
from main import build_parser
from tests.helpers_outputs import OUTPUT_CASES


def test_every_output_option_is_one_field_with_one_row_and_a_case_every_host_tries() -> None:
    keys = [option.key for option in SINK_OPTIONS]
    assert keys == [f.name for f in fields(SinkOptions)], "a field without its row (or a row without its field)"
    assert set(OUTPUT_CASES) == set(keys), "tests/helpers_outputs.py must say how every host tries the option"


@pytest.mark.parametrize("parser", [build_parser, batch_parser])
def test_both_commands_take_every_output_option(parser) -> None:
    flags = {flag for action in parser()._actions for flag in action.option_strings}
    assert {option.flag for option in SINK_OPTIONS} <= flags
    args = parser().parse_args(["--stream", "127.0.0.1:9000", "--uncertainty-columns",
                                *(["in", "--out", "out"] if parser is batch_parser else [])])
    assert sink_options(args) == SinkOptions(stream="127.0.0.1:9000", uncertainty_columns=True)
    assert sink_options(parser().parse_args(["in", "--out", "out"] if parser is batch_parser else [])) == SinkOptions()


@pytest.mark.parametrize(("options", "words"), [
    (RunOptions("clip.mp4", max_frames=0), "max frames must be at least 1"),
    (RunOptions("clip.mp4", device="tpu"), "unknown device 'tpu'"),
    (RunOptions("clip.mp4", OutputPaths(video=Path("v.mp4"))), "needs a landmarks CSV output"),
    (RunOptions("clip.mp4", sinks=SinkOptions(stream="localhost")), "HOST:PORT"),
    (RunOptions("clip.mp4", sinks=SinkOptions(stream="no-such-host.invalid:9000")), "cannot resolve stream host"),
])
def test_check_refuses_each_bad_option_in_its_own_words(options: RunOptions, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        options.check()


def test_check_passes_a_good_run() -> None:
    RunOptions("clip.mp4", OutputPaths(Path("o.csv"), Path("o.json"), Path("o.mp4")),
               SinkOptions(stream="127.0.0.1:9000", uncertainty_columns=True), max_frames=5).check()
