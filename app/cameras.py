"""Which cameras there are, by name: the list the window's Source menu offers.

Apart from the capture thread (:mod:`app.capture`), which opens one of them: listing asks Qt
Multimedia or the operating system, never OpenCV, since probing indices with OpenCV opens each camera.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Camera indices offered where the operating system cannot list devices cheaply.
DEFAULT_CAMERA_CHOICES = (0, 1, 2, 3)
#: Where Linux names its video devices (one folder per /dev/videoN, with the driver's device name).
V4L2_SYSFS = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class CameraDevice:
    """A camera the user can pick: the OpenCV index that opens it and the name it is shown by."""

    index: int
    name: str


def list_cameras() -> list[CameraDevice]:
    """The cameras to offer, by name. Qt Multimedia's device list where it loads (it needs the system's
    multimedia libraries, e.g. libpulse on Linux) and finds any; otherwise the Linux device names from
    sysfs, or plain numbered indices elsewhere, so the menu always has something to open."""
    from PyQt6.QtCore import QLoggingCategory

    # Loading its FFmpeg back end, Qt Multimedia logs every optional hardware-decoding library it does
    # not find (VA-API, VDPAU ...): noise for a camera list, so its categories are quiet below warnings.
    QLoggingCategory.setFilterRules("qt.multimedia.*.debug=false\nqt.multimedia.*.info=false\n"
                                    "qt.multimedia.symbolsresolver=false")
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError as exc:
        log.debug("Qt Multimedia is unavailable (%s); listing cameras without it", exc)
        return fallback_cameras()
    return cameras_from_qt(QMediaDevices.videoInputs()) or fallback_cameras()


def cameras_from_qt(devices: list) -> list[CameraDevice]:
    """Qt's ``QCameraDevice`` list → OpenCV indices. On Linux a device's id is its node (``/dev/video2``
    → index 2); on Windows and macOS OpenCV numbers devices in the order the system lists them, which is
    the order Qt reports."""
    cameras = []
    for position, device in enumerate(devices):
        device_id = bytes(device.id()).decode(errors="replace")
        node = device_id.rpartition("/dev/video")[2]
        cameras.append(CameraDevice(int(node) if node.isdigit() else position, device.description()))
    return cameras


def fallback_cameras() -> list[CameraDevice]:
    """Without Qt Multimedia: on Linux each capture node in sysfs with its driver's name (a webcam's
    second node, index ≠ 0 there, carries metadata, not pictures); elsewhere indices 0–3."""
    if not sys.platform.startswith("linux"):
        return [CameraDevice(i, f"Camera {i}") for i in DEFAULT_CAMERA_CHOICES]
    cameras = []
    for node in V4L2_SYSFS.glob("video*"):
        number = node.name[5:]
        if not number.isdigit() or _read_text(node / "index", "0") != "0":
            continue
        cameras.append(CameraDevice(int(number), f"{_read_text(node / 'name', 'Camera')} (/dev/video{number})"))
    return sorted(cameras, key=lambda camera: camera.index)


def _read_text(path: Path, default: str) -> str:
    try:
        return path.read_text().strip() or default
    except OSError:
        return default
