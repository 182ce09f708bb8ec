"""Landmark schemes: the one place that knows what each landmark index means.

Flip augmentation, NME normalisation, template bucketing and drawing all need index facts
(which point mirrors which, where the eye corners are, which points form a contour). Keeping
them here means no other module hard-codes an index.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contour:
    """A polyline through landmark indices, drawn in order; ``closed`` joins the last to the first."""

    name: str
    indices: tuple[int, ...]
    closed: bool = False


@dataclass(frozen=True)
class LandmarkScheme:
    """Everything index-related about one annotation convention.

    ``left``/``right`` refer to the image as seen (a frontal face's left-image eye is the
    subject's right eye), which is what a mirror flip swaps.
    """

    name: str
    num_points: int
    mirror: tuple[int, ...]
    outer_eye_corners: tuple[int, int]
    left_eye_corners: tuple[int, int]  # (outer, inner) of the eye on the image's left
    right_eye_corners: tuple[int, int]  # (outer, inner) of the eye on the image's right
    contours: tuple[Contour, ...]
    #: Per eye, ``(outer corner, inner corner, upper lid points, lower lid points)``, each lid listed from
    #: the outer corner to the inner one. Blinks live in the lid points, so their error is reported on its
    #: own (a model can be good on average and still miss every blink), and augmentation closes eyes with it.
    eyes: tuple[tuple[int, int, tuple[int, ...], tuple[int, ...]], ...] = ()

    @property
    def eyelids(self) -> tuple[int, ...]:
        """Every upper and lower lid point (not the corners)."""
        return tuple(sorted(i for _, _, upper, lower in self.eyes for i in upper + lower))

    def __post_init__(self) -> None:
        if sorted(self.mirror) != list(range(self.num_points)):
            raise ValueError(f"scheme {self.name}: mirror is not a permutation of {self.num_points} points")


def _pairs_to_permutation(num_points: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(num_points))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


def _span(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


_IBUG68_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    + [(60, 64), (61, 63), (65, 67)]
)

IBUG68 = LandmarkScheme(
    name="ibug68",
    num_points=68,
    mirror=_pairs_to_permutation(68, _IBUG68_PAIRS),
    outer_eye_corners=(36, 45),
    left_eye_corners=(36, 39),
    right_eye_corners=(45, 42),
    contours=(
        Contour("jaw", _span(0, 16)),
        Contour("left_brow", _span(17, 21)),
        Contour("right_brow", _span(22, 26)),
        Contour("nose_bridge", _span(27, 30)),
        Contour("nose_base", (30,) + _span(31, 35) + (30,)),
        Contour("left_eye", _span(36, 41), closed=True),
        Contour("right_eye", _span(42, 47), closed=True),
        Contour("outer_lips", _span(48, 59), closed=True),
        Contour("inner_lips", _span(60, 67), closed=True),
    ),
    eyes=((36, 39, (37, 38), (41, 40)), (45, 42, (44, 43), (46, 47))),
)

_WFLW98_PAIRS = (
    [(i, 32 - i) for i in range(16)]
    + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    + [(55, 59), (56, 58)]
    + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]
    + [(88, 92), (89, 91), (93, 95)]
    + [(96, 97)]
)

WFLW98 = LandmarkScheme(
    name="wflw98",
    num_points=98,
    mirror=_pairs_to_permutation(98, _WFLW98_PAIRS),
    outer_eye_corners=(60, 72),
    left_eye_corners=(60, 64),
    right_eye_corners=(72, 68),
    contours=(
        Contour("jaw", _span(0, 32)),
        Contour("left_brow", _span(33, 41), closed=True),
        Contour("right_brow", _span(42, 50), closed=True),
        Contour("nose_bridge", _span(51, 54)),
        Contour("nose_base", _span(55, 59)),
        Contour("left_eye", _span(60, 67), closed=True),
        Contour("right_eye", _span(68, 75), closed=True),
        Contour("outer_lips", _span(76, 87), closed=True),
        Contour("inner_lips", _span(88, 95), closed=True),
    ),
    eyes=((60, 64, (61, 62, 63), (67, 66, 65)), (72, 68, (71, 70, 69), (73, 74, 75))),
)

SCHEMES: dict[str, LandmarkScheme] = {s.name: s for s in (IBUG68, WFLW98)}


def get_scheme(name: str) -> LandmarkScheme:
    """Look a scheme up by name; an unknown name lists the known ones."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown landmark scheme {name!r}; known: {', '.join(sorted(SCHEMES))}") from None


def scheme_for_point_count(num_points: int) -> LandmarkScheme:
    """The scheme with this many points (readers use it when a file states only a count)."""
    for scheme in SCHEMES.values():
        if scheme.num_points == num_points:
            return scheme
    raise KeyError(f"no landmark scheme has {num_points} points; known: "
                   + ", ".join(f"{s.name} ({s.num_points})" for s in SCHEMES.values()))
