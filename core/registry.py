"""Choices registered once: each name with its factory and the label users see.

Detectors (:data:`core.detection.DETECTORS`), smoothers (:data:`core.smoothing.SMOOTHERS`) and
aggregation strategies (:data:`core.decode.STRATEGIES`) are each one :class:`Registry`, declared in
the module that implements them. Everything that offers a choice — the settings description
(:mod:`core.config`, hence ``--detector`` and friends on both commands and the settings dialog's
combo boxes), the factories, the validation of a configuration — reads the registry, so adding a
choice is one entry in the module that implements it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

T = TypeVar("T")


class UnknownChoice(KeyError, ValueError):
    """A name no entry has: a ValueError for callers validating input, a KeyError for mapping code."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Choice(Generic[T]):
    """One entry: its ``name`` (settings value, command-line word), ``label`` (the dialog's text) and
    ``make``, what the implementing module builds it with."""

    name: str
    label: str
    make: T


class Registry(Mapping[str, Choice[T]]):
    """Name → :class:`Choice`, in registration order; iterating gives the names, so a registry is also
    what ``argparse``'s ``choices`` and a combo box list. ``kind`` words the error for an unknown name."""

    def __init__(self, kind: str, choices: Iterable[Choice[T]]) -> None:
        self.kind = kind
        self._choices: dict[str, Choice[T]] = {}
        for choice in choices:
            self.register(choice)

    def register(self, choice: Choice[T]) -> Choice[T]:
        """Add ``choice`` (a name is registered once)."""
        if choice.name in self._choices:
            raise ValueError(f"{self.kind} {choice.name!r} is registered already")
        self._choices[choice.name] = choice
        return choice

    def check(self, name: str) -> str:
        """``name`` if it is registered; :class:`UnknownChoice` (a ValueError) naming the choices otherwise."""
        return self[name].name

    def __getitem__(self, name: str) -> Choice[T]:
        try:
            return self._choices[name]
        except KeyError:
            raise UnknownChoice(f"unknown {self.kind} {name!r}; use one of {', '.join(self._choices)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._choices

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)
