"""The window's own preferences: which camera by name, its frame rate, mirroring, the plot panel.

They belong to the window, not to processing (nothing here changes a landmark), so they live beside
:class:`app.settings.AppSettings` rather than in it, in the same store and parsed the same way: a bad
value falls back to its default with a warning instead of failing at start-up. They are changed from
the window's menus and saved at once, so the next start looks like the last one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PyQt6.QtCore import QSettings

from app.settings import _choice, _text
from core.run_options import as_bool

#: Frame rates offered for cameras; 0 keeps whatever the camera delivers by default.
FRAME_RATES: tuple[int, ...] = (0, 15, 30, 60)


@dataclass(frozen=True)
class ViewSettings:
    """``camera_name`` "" means "the camera at the stored index, whatever it is called"."""

    camera_name: str = ""
    camera_fps: int = 0
    mirror: bool = False
    plot_visible: bool = True


_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "camera_name": ("camera/name", _text),
    "camera_fps": ("camera/fps", lambda value: int(_choice([str(r) for r in FRAME_RATES])(value))),
    "mirror": ("view/mirror", as_bool),
    "plot_visible": ("view/plot", as_bool),
}


def load_view_settings(store: QSettings) -> tuple[ViewSettings, list[str]]:
    """Read the window's preferences; returns them with one warning per value that had to be replaced."""
    defaults, values, warnings = ViewSettings(), {}, []
    if store.status() != QSettings.Status.NoError:
        return defaults, []  # load_settings already warns about the unreadable store
    for name, (key, parse) in _KEYS.items():
        if not store.contains(key):
            continue
        try:
            values[name] = parse(store.value(key))
        except (TypeError, ValueError) as exc:
            warnings.append(f"Setting {key} = {store.value(key)!r} is invalid ({exc}); "
                            f"using the default {getattr(defaults, name)!r}.")
    return ViewSettings(**values), warnings


def save_view_settings(store: QSettings, settings: ViewSettings) -> None:
    for name, (key, _parse) in _KEYS.items():
        store.setValue(key, getattr(settings, name))
    store.sync()
