"""The torch-free evaluation protocol (core.offline.evaluation): tables with fallbacks and turned faces, and
benchmarks.accuracy on the shipped model in a process where torch cannot be imported."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.offline.evaluation import LOSS_THRESHOLD, Evaluation, format_table, report, yaw_buckets

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_report_scores_turned_faces_and_counts_fallbacks() -> None:
    result = Evaluation(keys=["m/a", "m/b", "h/c"], sources=["m", "m", "h"], nmes=np.array([0.02, 0.2, 0.04]),
                        scores=np.array([0.9, LOSS_THRESHOLD - 0.01, 0.8]),
                        norms=np.array(["inter_ocular", "box_diagonal", "inter_ocular"], dtype=object),
                        bias=np.array([[0.01, -0.02], [0.03, 0.0], [-0.01, 0.005]]),
                        eyelids=np.array([0.03, np.nan, 0.05]), pearson=-0.1)
    numbers = report(result, {"m/a": "lefthalf", "m/b": "right", "h/c": "frontal"})
    assert numbers["per_source"]["m"]["dx"] == pytest.approx(0.02) and numbers["per_source"]["m"]["dy"] == pytest.approx(-0.01)
    assert numbers["dy"] == pytest.approx(-0.005) and numbers["eyelid"] == pytest.approx(0.04)
    assert numbers["turned"]["n"] == 2 and numbers["turned"]["nme"] == pytest.approx(0.11)
    assert numbers["turned"]["fr"] == 0.5 and numbers["turned"]["tracked"] == 0.5
    assert numbers["per_source"]["m"]["fallback"] == 1 and numbers["fallback"] == 1
    table = format_table(numbers)
    assert "turned (yaw not frontal)" in table and "(1 box-diag)" in table and "50.0" in table
    assert "+2.00" in table and "-1.00" in table  # the m row's signed dx, dy in %
    assert "turned" not in report(result, {})  # no yaw metadata: no turned row


def test_yaw_buckets_come_from_the_data_metadata(shared_data: Path) -> None:
    buckets = yaw_buckets(shared_data)
    assert buckets["merl_rav_aflw/image00008"] == "frontal"
    assert set(buckets.values()) == {"frontal", "lefthalf", "righthalf", "left", "right"}
    assert yaw_buckets(shared_data / "nowhere") == {}


def test_accuracy_benchmark_runs_without_torch(shared_data: Path, tmp_path: Path) -> None:
    """benchmarks.accuracy needs only the bench extra: torch made unimportable, defaults as on a fresh clone."""
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('torch is not installed (bench extra)')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from benchmarks import accuracy\n"
            f"sys.exit(accuracy.main(['--limit', '3', '--no-dlib', '--results', {str(tmp_path / 'R.md')!r}, "
            f"'--plot', {str(tmp_path / 'ced.png')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line.split("|") for line in done.stdout.splitlines() if line.startswith("| ours (anchorface_ibug68"))
    assert row[2].strip() == "3" and 0 < float(row[3]) < 20
