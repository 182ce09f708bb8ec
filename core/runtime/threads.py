"""How many CPU threads inference uses."""
from __future__ import annotations

import os
from pathlib import Path


def physical_cores() -> int:
    """Physical core count (Linux: distinct (package, core) pairs in /proc/cpuinfo), else logical CPUs."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores = set()
    package = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not key:
            if core is not None:
                cores.add((package, core))
            package = core = None
    return len(cores) or os.cpu_count() or 1
