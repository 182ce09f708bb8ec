"""The training-throughput comparison: its uncached arm feeds the very samples the cache does."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.offline.datasets import read_dataset, select_split
from training import throughput
from training.data import FaceDataset

pytestmark = pytest.mark.slow  # see pyproject.toml: left out of the quick run


def test_disk_arm_yields_the_same_samples_as_the_cache(shared_data: Path) -> None:
    records = select_split(read_dataset(shared_data), "train")[:3]
    cached = FaceDataset(records, True, input_size=128)
    from_disk = FaceDataset(records, True, input_size=128, in_memory=False)
    assert from_disk.cached is None and len(from_disk) == len(cached) == 3
    for index in range(3):
        for a, b in zip(cached[index], from_disk[index]):
            torch.testing.assert_close(a, b, equal_nan=True)


def test_cli_reports_each_arm_against_disk(shared_data: Path, capsys) -> None:
    code = throughput.main(["--data", str(shared_data), "--input-size", "128", "--steps", "1", "--rounds", "1",
                            "--batch-size", "2", "--faces", "4", "--threads", "1"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("128 px, batch 2, 1 threads")
    assert [line.split()[0] for line in lines[1:]] == ["disk", "memory", "memory+worker"]
    assert lines[1].endswith("1.00x disk")
    assert all(float(line.split()[1]) > 0 for line in lines[1:])
