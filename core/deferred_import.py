"""A slow import started on a background thread early and waited for only where it is needed.

Imports run Python code under the GIL, but much of start-up (ONNX Runtime building a session,
OpenCV opening a video, MediaPipe building its graph) runs native code that releases it, so a
module that takes a second to import can load meanwhile instead of before the first frame.
"""
from __future__ import annotations

import importlib
import threading
from types import ModuleType


class DeferredImport:
    """``start()`` begins importing ``name`` in the background (once); ``module()`` returns it, waiting
    if it is still loading. Python's per-module import lock makes a concurrent import wait, not repeat."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name=f"import {self.name}", daemon=True)
                self._thread.start()

    def module(self) -> ModuleType:
        """The module; an import error is raised here, in the caller's thread."""
        self.start()
        assert self._thread is not None
        self._thread.join()
        return importlib.import_module(self.name)

    def _load(self) -> None:
        try:
            importlib.import_module(self.name)
        except Exception:  # raised again, with its traceback, by module() in the thread that needs it
            pass
