"""Import one MediaPipe solution (face detection, face mesh) without the rest of MediaPipe.

``import mediapipe`` runs a package ``__init__`` that imports every legacy solution, the Tasks API and,
through ``drawing_utils``, matplotlib: 1.4 s of CPU on the project machine, against 0.3 s for the one
solution the detector needs. :func:`solution` registers the ``mediapipe`` and
``mediapipe.python.solutions`` packages without running their ``__init__`` files and imports only the
requested module (``mediapipe.python``, which loads the native bindings, still runs in full). The bare
packages resolve any other attribute on first use (PEP 562), so later code that writes
``import mediapipe as mp; mp.solutions.face_mesh`` still works.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import threading
from types import ModuleType

_PACKAGES = {"mediapipe": "mediapipe.python.", "mediapipe.python.solutions": "mediapipe.python.solutions."}
#: Names the skipped ``mediapipe/__init__.py`` binds to something other than the same-named module.
_ALIASES = {"mediapipe.tasks": "mediapipe.tasks.python"}
_lock = threading.Lock()


def solution(name: str) -> ModuleType:
    """``mediapipe.python.solutions.<name>``; raises ImportError when mediapipe is not installed."""
    with _lock:
        if "mediapipe" not in sys.modules:
            try:
                _register_bare("mediapipe")
                importlib.import_module("mediapipe.python")
                _register_bare("mediapipe.python.solutions")
            except BaseException:  # leave no half-registered package behind for a later import
                for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")]:
                    del sys.modules[name]
                raise
    return importlib.import_module(f"mediapipe.python.solutions.{name}")


def _register_bare(package: str) -> None:
    """Put ``package`` in ``sys.modules`` with its ``__path__`` but without executing its ``__init__``."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"No module named {package!r}", name=package)
    module = importlib.util.module_from_spec(spec)
    prefix = _PACKAGES[package]

    def resolve(attribute: str) -> ModuleType:  # what the skipped __init__ would have bound
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        own = f"{package}.{attribute}"
        if own in _ALIASES:
            return importlib.import_module(_ALIASES[own])
        try:
            return importlib.import_module(prefix + attribute)
        except ModuleNotFoundError:
            return importlib.import_module(own)

    module.__getattr__ = resolve  # type: ignore[attr-defined]
    if package == "mediapipe":
        module.__version__ = importlib.metadata.version("mediapipe")  # type: ignore[attr-defined]
    sys.modules[package] = module
    if "." in package:
        parent, _, child = package.rpartition(".")
        setattr(sys.modules[parent], child, module)
