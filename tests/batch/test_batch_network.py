"""A local batch keeps Ray off the network: a real ``python main.py batch`` with its own local Ray
cluster, watched from outside through /proc while it runs and after it returns.

The run's processes are found by a marker in their environment (every Ray process inherits the
driver's), so helpers that outlive the command or leave its process tree are found too.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.runtime import DEFAULT_MODEL_PATH
from tests.batch.test_batch import write_clip
from core.paths import REPO_ROOT

pytest.importorskip("ray", reason='Ray is the optional "batch" extra')
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(), reason="default model not built yet"),
              pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")]

MARKER = "ANCHORFACE_TEST_RUN"
RUN_LIMIT_S = 300


@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp, tcp6, udp, udp6
    address: str
    port: int
    command: str  # the owning process's command line, for the failure message

    @property
    def loopback(self) -> bool:
        ip = ipaddress.ip_address(self.address)
        mapped = getattr(ip, "ipv4_mapped", None)
        return (mapped or ip).is_loopback


def _local_address(field: str, v6: bool) -> tuple[str, int]:
    """``0100007F:1F90`` → ("127.0.0.1", 8080): /proc/net's address format (32-bit words, host order)."""
    hex_ip, hex_port = field.split(":")
    raw = bytes.fromhex(hex_ip)
    if v6:
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, raw), int(hex_port, 16)
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(hex_port, 16)


def bound_sockets() -> dict[str, tuple[str, str, int]]:
    """Socket inode → (protocol, address, port) for every listening TCP and every bound UDP socket."""
    found = {}
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/net/{protocol}") as table:
            next(table)
            for line in table:
                fields = line.split()
                if protocol.startswith("tcp") and fields[3] != "0A":  # 0A: LISTEN
                    continue
                found[fields[9]] = (protocol, *_local_address(fields[1], protocol.endswith("6")))
    return found


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment holds ``MARKER=marker`` (ours: readable without privileges)."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def listeners_of(pids: list[int]) -> list[Listener]:
    sockets = bound_sockets()
    found = []
    for pid in pids:
        command = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")[:120]
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        found += [Listener(*sockets[link[8:-1]], command) for link in links
                  if link.startswith("socket:[") and link[8:-1] in sockets]
    return found


def test_a_local_batch_listens_on_loopback_only_with_a_token_and_leaves_no_ray_process(shared_data: Path,
                                                                                          tmp_path: Path) -> None:
    """Before: the GCS, raylet, workers and driver listened on every interface (``::``) and the
    runtime-env agent on the machine's address, with no authentication. Now every socket of the run
    is on loopback, the GCS requires this run's token, and no process of the run outlives it."""
    write_clip(shared_data / "video" / "pyfeat_single_face.mp4", tmp_path / "in" / "clip.avi", 0)
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER: marker, "PYTHONPATH": str(REPO_ROOT)}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):  # the run must make its own choices
        env.pop(key, None)
    command = [sys.executable, str(REPO_ROOT / "main.py"), "batch", str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    run = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: set[Listener] = set()
    gcs_environments: list[bytes] = []
    deadline = time.monotonic() + RUN_LIMIT_S
    while run.poll() is None and time.monotonic() < deadline:
        pids = marked_pids(marker)
        seen.update(listeners_of(pids))
        gcs_environments += [_read(f"/proc/{pid}/environ") for pid in pids
                             if b"gcs_server" in _read(f"/proc/{pid}/cmdline")]
        time.sleep(0.2)
    output = run.communicate(timeout=max(1.0, deadline - time.monotonic()))[0].decode(errors="replace")
    left = marked_pids(marker)
    assert run.returncode == 0, output
    assert any("gcs_server" in listener.command for listener in seen), f"the run's Ray was not seen: {seen}"
    exposed = sorted(str(listener) for listener in seen if not listener.loopback)
    assert not exposed, "sockets on a non-loopback address:\n" + "\n".join(exposed)
    assert gcs_environments and all(b"RAY_AUTH_MODE=token" in e.split(b"\0") for e in gcs_environments)
    assert not left, "processes of the run still alive after it returned: " + ", ".join(
        _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")[:80] for pid in left)
