"""How every benchmark reports: a markdown table printed and appended, with the machine, the package
versions and the exact command, as a dated section of ``benchmarks/RESULTS.md``.

Absolute numbers on shared machines are noisy, so a result without its machine and command cannot be
compared with anything; writing them from one place keeps every section complete and alike.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from core.runtime import DEFAULT_MODEL_PATH
from core.runtime.threads import physical_cores

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """# Benchmark results

Sections are appended by `python -m benchmarks.speed`, `python -m benchmarks.accuracy` and
`python -m benchmarks.stability` (newest last). Each one names its machine, package versions and the
exact command. Compare ratios within one section: absolute times on shared machines are noisy.
"""
#: Packages whose versions decide the numbers (missing ones are reported as "not installed").
PACKAGES = ("numpy", "opencv-contrib-python", "onnxruntime-gpu", "onnxruntime", "torch", "mediapipe", "dlib-bin",
            "filterpy")


@dataclass
class Section:
    """One benchmark run as it appears in RESULTS.md."""

    title: str
    command: str
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now().replace(microsecond=0))

    def markdown(self) -> str:
        lines = [f"## {self.title} — {self.created.isoformat(sep=' ')}", "",
                 f"- machine: {machine_description()}",
                 f"- packages: {', '.join(f'{k} {v}' for k, v in package_versions().items())}",
                 f"- command: `{self.command}`", ""]
        for table in self.tables:
            lines += [table, ""]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def benchmark_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser every benchmark starts from: its ``python -m`` name, its docstring as help, ``--model``
    (the bundled default model unless told otherwise) and ``--results`` (where its section goes)."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="exported .onnx model (default: bundled)")
    p.add_argument("--results", default=str(RESULTS_PATH), help="markdown file the section is appended to")
    return p


def command_line(module: str, argv: list[str] | None) -> str:
    """The exact command that reproduces a run (``argv`` as main() received it)."""
    return shlex.join(["python", "-m", module, *(argv or [])])


def machine_description() -> str:
    """CPU model, core counts and current load (the numbers depend on them more than on anything else)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    text = (f"{model}, {physical_cores()} physical / {os.cpu_count()} logical cores, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    if hasattr(os, "getloadavg"):  # other work on the machine when the section was written
        text += f", load average {os.getloadavg()[0]:.1f}"
    gpus = _gpu_names()
    return f"{text}, GPU: {gpus}" if gpus else text


def _gpu_names() -> str:
    """NVIDIA GPUs as nvidia-smi names them ("" without a driver)."""
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return "; ".join(line.strip() for line in done.stdout.splitlines() if line.strip()) if done.returncode == 0 else ""


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; absent packages are left out, except the peers (said absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in ("mediapipe", "dlib-bin"):
                versions[name] = "not installed"
    return versions


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-markdown table; the first column left-aligned, the numbers right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def append_section(section: Section, path: str | Path = RESULTS_PATH) -> Path:
    """Append ``section`` to ``path`` (creating it with the header), and return the path."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    path.write_text(text.rstrip() + "\n\n" + section.markdown(), encoding="utf-8")
    return path
