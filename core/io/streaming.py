"""Live streaming of every frame's faces to other programs as OSC over UDP (python-osc).

Most trackers' users run them to feed something else — an avatar, an OBS script, a research logger —
and OSC over UDP is what those programs already read. One OSC *bundle* per frame (one datagram, time
tag "immediately") carries these messages, so a receiver sees a frame whole or not at all:

=====================================  ==========================================================
address                                arguments
=====================================  ==========================================================
``/anchorface/frame``                  int frame index, float timestamp (s), int number of faces
``/anchorface/face/<id>/confidence``   float face score in (0, 1)
``/anchorface/face/<id>/landmarks``    2L floats ``x0 y0 x1 y1 …`` in image pixels (smoothed)
``/anchorface/face/<id>/uncertainty``  L floats, each point's anchor spread in image pixels
                                       (absent for a single-anchor model)
``/anchorface/face/<id>/pose``         float yaw, pitch, roll in degrees (``core.pose`` signs)
``/anchorface/face/<id>/position``     float x, y, z in mm, camera frame (x right, y down, z away)
``/anchorface/face/<id>/eyes``         float eye aspect ratio of the image-left and image-right eye
``/anchorface/face/<id>/mouth``        float mouth openness (inner-lip aspect ratio)
``/anchorface/face/<id>/blink``        int 1 when a blink ended this frame else 0, int blinks so far,
                                       int 1 while the eyes count as closed
=====================================  ==========================================================

``<id>`` is the track id (stable while the face is followed). ``pose`` and ``position`` are left out
when there is no pose, the face-state messages when the scheme has no eye contours.

The frame loop must never wait for the network: :meth:`OscStreamer.send` only puts the frame on a
bounded queue and returns; a sender thread builds and sends the datagrams on a non-blocking socket.
When the queue is full (a receiver or the machine too slow) or the socket would block, the frame is
dropped and counted — for live data the newest frame matters, not a backlog.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Sequence

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from core.results import FaceResult

log = logging.getLogger(__name__)

PREFIX = "/anchorface"
#: Frames waiting for the sender thread before new ones are dropped (a few frames of slack at 30 fps).
MAX_PENDING = 8
_STOP = object()


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) → ``(host, port)``; a clear ``ValueError`` otherwise."""
    host, sep, port = str(text).strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"stream target must be HOST:PORT with a port in 1-65535, got {text!r}")
    return host, int(port)


def resolve_target(text: str) -> tuple[socket.AddressFamily, tuple]:
    """``HOST:PORT`` checked and its host looked up: ``(address family, socket address)``; a one-line
    ``ValueError`` otherwise. Commands call it before they open any file, so a typo in the host name
    cannot leave half-started outputs behind."""
    return _lookup(*parse_target(text))


def _lookup(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve stream host {host!r}: {exc.strerror or exc}") from None
    return family, address


def _message(address: str, values: Sequence[float | int]) -> OscMessageBuilder:
    builder = OscMessageBuilder(address)
    for v in values:
        builder.add_arg(int(v) if isinstance(v, (bool, int, np.integer)) else float(v),
                        "i" if isinstance(v, (bool, int, np.integer)) else "f")
    return builder


def frame_messages(frame_index: int, timestamp: float, faces: Sequence[FaceResult]) -> list[tuple[str, list]]:
    """The ``(address, arguments)`` pairs of one frame, in the order sent (see the module table)."""
    messages: list[tuple[str, list]] = [(f"{PREFIX}/frame", [int(frame_index), float(timestamp), len(faces)])]
    for face in faces:
        base = f"{PREFIX}/face/{int(face.track_id)}"
        messages.append((f"{base}/confidence", [float(face.confidence)]))
        messages.append((f"{base}/landmarks", np.asarray(face.landmarks, dtype=np.float64).ravel().tolist()))
        if face.uncertainty is not None:
            messages.append((f"{base}/uncertainty", np.asarray(face.uncertainty, dtype=np.float64).tolist()))
        if face.pose is not None:
            messages.append((f"{base}/pose", [face.pose.yaw, face.pose.pitch, face.pose.roll]))
            messages.append((f"{base}/position", face.position.tolist()))
        if face.state is not None:
            s = face.state
            messages.append((f"{base}/eyes", [s.eye_left, s.eye_right]))
            messages.append((f"{base}/mouth", [s.mouth]))
            messages.append((f"{base}/blink", [int(s.blink), int(s.blinks), int(s.eyes_closed)]))
    return messages


def encode_frame(frame_index: int, timestamp: float, faces: Sequence[FaceResult]) -> bytes:
    """One frame as one OSC bundle datagram."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for address, values in frame_messages(frame_index, timestamp, faces):
        bundle.add_content(_message(address, values).build())
    return bundle.build().dgram


class OscStreamer:
    """Sends each frame's faces to ``host:port`` from a background thread; never blocks the caller.

    Use as a context manager (or call :meth:`start` and :meth:`close`). ``sent`` and ``dropped`` count
    frames; frames given to :meth:`send` before :meth:`start` wait in the queue (or are dropped).
    """

    def __init__(self, host: str, port: int, max_pending: int = MAX_PENDING) -> None:
        family, address = _lookup(host, port)
        self.target = f"{host}:{port}"
        self._address = address
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._thread = threading.Thread(target=self._run, name=f"osc-stream {self.target}", daemon=True)
        self.sent = 0
        self.dropped = 0

    @classmethod
    def to(cls, target: str, max_pending: int = MAX_PENDING) -> "OscStreamer":
        """A streamer for ``HOST:PORT`` text (the ``--stream`` option and the settings field)."""
        host, port = parse_target(target)
        return cls(host, port, max_pending)

    def __enter__(self) -> "OscStreamer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> "OscStreamer":
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def send(self, frame_index: int, timestamp: float, faces: Sequence[FaceResult]) -> bool:
        """Queue one frame; returns False (and counts it dropped) when the queue is full. Never waits."""
        try:
            self._queue.put_nowait((int(frame_index), float(timestamp), list(faces)))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def close(self, timeout: float = 1.0) -> None:
        """Stop the sender thread (frames still queued are sent if it keeps up) and close the socket."""
        if self._thread.is_alive():
            while True:
                try:
                    self._queue.put(_STOP, timeout=timeout)
                    break
                except queue.Full:  # make room: the stop request must get in
                    self._discard_one()
            self._thread.join(timeout)
        self._socket.close()
        if self.dropped:
            log.info("OSC stream to %s: %d frames sent, %d dropped", self.target, self.sent, self.dropped)

    def _discard_one(self) -> None:
        try:
            self._queue.get_nowait()
            self.dropped += 1
        except queue.Empty:
            pass

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._socket.sendto(encode_frame(*item), self._address)
                self.sent += 1
            except (BlockingIOError, InterruptedError):
                self.dropped += 1  # the socket buffer is full: drop rather than wait
            except OSError as exc:  # nobody listening (ICMP refused), network down: keep going
                self.dropped += 1
                log.debug("OSC stream to %s: %s", self.target, exc)
