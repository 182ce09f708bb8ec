"""Import the one piece of a third-party package we use, not everything its ``__init__`` imports.

``import mediapipe`` costs most of the start-up in its package ``__init__``, not in what we use: it
imports every legacy solution, the Tasks API and, through ``drawing_utils``, matplotlib (1.4 s of CPU
on the project machine); the detector needs only ``face_detection``.

:func:`bare_package` registers a package without running its ``__init__`` and completes it on first
need: an attribute the bare package lacks runs the real ``__init__`` in place (PEP 562
``__getattr__``), so later code that writes ``mp.solutions.face_mesh`` still gets the whole package, only
later. mediapipe's version is pinned (==0.10.21), and tests/core/test_startup.py checks both the saving and
the completed package. :func:`lazy_module` defers a whole module instead.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any, Callable

_lock = threading.RLock()


def bare_package(name: str, light: tuple[str, ...] = (), deferred: tuple[str, ...] = ()) -> ModuleType:
    """Register package ``name`` with its ``__path__`` but without running its ``__init__``.

    A missing attribute is looked up in the ``light`` submodules first; a name in ``deferred`` becomes
    a function that completes the package when called; anything else completes the package (runs the
    real ``__init__`` in this module) and is then looked up normally.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    completed = threading.Event()

    def complete() -> None:
        with _lock:
            if not completed.is_set():
                completed.set()
                spec.loader.exec_module(module)

    def resolve(attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for sub in light:
            part = importlib.import_module(f"{name}.{sub}")
            if hasattr(part, attribute):
                return getattr(part, attribute)
        if attribute in deferred:
            return _deferred_call(module, attribute, complete)
        complete()
        if attribute in module.__dict__:
            return module.__dict__[attribute]
        try:
            return importlib.import_module(f"{name}.{attribute}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    module.__getattr__ = resolve  # type: ignore[attr-defined]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _deferred_call(module: ModuleType, attribute: str, complete: Callable[[], None]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        complete()
        return module.__dict__[attribute](*args, **kwargs)

    call.__name__ = attribute
    return call


#: Calculator-option protos a solution's graph needs but its module does not import (the package
#: ``__init__`` happens to, through other solutions). Without them the python protobuf drops those
#: options when the solution rewrites its graph: face detection then runs without non-maximum
#: suppression and reports every anchor box (7 boxes for one face on the shared clip).
_SOLUTION_PROTOS = {"face_detection": ("mediapipe.calculators.util.non_max_suppression_calculator_pb2",)}


def mediapipe_solution(name: str) -> ModuleType:
    """``mediapipe.python.solutions.<name>`` alone (ImportError where mediapipe is not installed)."""
    with _lock:
        try:
            bare_package("mediapipe")
            importlib.import_module("mediapipe.python")  # the native bindings: needed in full
            bare_package("mediapipe.python.solutions")
            for proto in _SOLUTION_PROTOS.get(name, ()):
                importlib.import_module(proto)
        except BaseException:
            _forget("mediapipe")
            raise
    return importlib.import_module(f"mediapipe.python.solutions.{name}")


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module object whose code runs on first attribute access (the standard library's
    ``importlib.util.LazyLoader``): for a dependency only some runs use, such as PyAV, which only a run
    that writes a video needs."""
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ImportError(f"No module named {name!r}", name=name)
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


def _forget(package: str) -> None:
    """Drop a half-registered package, so a later import starts clean."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
