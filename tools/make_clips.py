"""Derived clips for the coverage and whole-job benchmarks, made deterministically from the shared real clips.

    python -m tools.make_clips OUT_DIR [--videos DIR] [--frames N] [--face-px 40]

The shared clips all show one face in every frame; real footage does not. From them this writes, into
``OUT_DIR`` (not committed; the same inputs always give the same frames):

* ``faceless_<clip>.mp4`` — faces that come and go: the clip cut in two halves joined by stretches of
  its own background (before, between, after; ``FACELESS_PATTERN``). The background is real video of
  the same clip: on every frame, the larger band beside the face (left or right, else above or below the union
  of all face boxes found in the clip, widened by a quarter) is cut out and scaled up to the full frame —
  so it keeps the clip's noise, compression and light, blurred by the scaling. The tool checks that no
  detector (MediaPipe short and full range) finds a face in any background frame, and refuses otherwise;
* ``side_by_side_2.mp4``, ``side_by_side_3.mp4`` — several faces: two or three clips scaled to one
  height and placed side by side, each sampled at the output's frame times (the first clip's rate);
  ``side_by_side_3_staggered.mp4`` (``STAGGERED_SOURCES``): three clips, the second and third panels
  showing their own background (as above) until ``STAGGER`` and 2 × ``STAGGER`` seconds: people coming
  in, no cut;
* ``crowd_6.mp4`` — more faces than the tracker follows by default (4): six clips (``CROWD_SOURCES``) in two
  rows of three, each panel half the height, the shorter row padded with black;
* ``small_face.mp4`` — a person across a room: the first clip scaled so its face is ``--face-px`` wide
  (measured with MediaPipe full range) and pasted in the middle of a black frame of its own size;
* ``cut.mp4`` — two shots of different people, the second framed so its face starts where the first
  one's ended (the hard case for ids across a cut);
* ``turn.mp4`` — a head turning from frontal to profile and back. None of the shared clips turns further
  than about 20° of yaw, so this one is made from still photos: MERL-RAV's turned faces of the shared
  data (``faces_meta.json``: ``yaw_bucket``, ``n_self_occluded``), frontal → half → profile → half →
  frontal (``TURN_STEPS``), faces turned left mirrored so all turn one way, each ordered by how many of
  its points the turn hides. Every photo is scaled and shifted so its visible-landmark box has the same
  height and centre, held for ``TURN_HOLD`` frames and cross-faded into the next over ``TURN_FADE``:
  a turn at 30 fps whose identity changes, harder than a real one (double images in the fades), never
  easier;
* ``profile_start.mp4`` — faces that first appear in profile: the most turned MERL-RAV faces (``left``,
  ``right`` buckets, left ones mirrored), each fading in from black (``PROFILE_FADE`` s) over a
  faceless gap, at ``PROFILE_FACE_HEIGHT`` of the frame height (about 90 px: small turned faces are where
  MediaPipe misses most), drifting slowly, for ``PROFILE_SECONDS``; segment k's face appears at
  k · (``PROFILE_GAP`` + ``PROFILE_FADE`` + ``PROFILE_SECONDS``) + ``PROFILE_GAP`` seconds
  (:func:`profile_onsets`).

The last two need the shared annotated faces (``--data``). Everything is written with OpenCV's ``mp4v`` and read back through ``core.io.video`` like any clip.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.paths import SHARED_DATA, SHARED_VIDEOS
from core.detection import MediaPipeDetector, calibrated_box
from core.geometry import Box, landmark_box
from core.io.video import SourceError, VideoSource
from core.offline.datasets import read_pts

#: Clips made into faceless versions: a close-up, a webcam with a window behind, a portrait phone selfie.
FACELESS_SOURCES = ("pyfeat_WolfgangLanger_Pexels.mp4", "openface_default.wmv", "liveportrait_d13_selfie.mp4")
#: The faceless clip, in seconds: background, first half of the clip, background, second half, background.
FACELESS_PATTERN = (2.0, None, 2.0, None, 1.0)
#: Clips placed side by side (the first two, then all three), each with one face throughout.
SIDE_BY_SIDE_SOURCES = ("pyfeat_WolfgangLanger_Pexels.mp4", "openface_default.wmv", "liveportrait_d3_expressions.mp4")
SIDE_BY_SIDE_HEIGHT = 360
#: In ``side_by_side_3_staggered.mp4`` the second face comes in after this many seconds, the third after
#: twice; its panels: a face there from the start (30 fps), then two clips that leave a background band.
STAGGER = 1.5
STAGGERED_SOURCES = ("liveportrait_d3_expressions.mp4", "pyfeat_WolfgangLanger_Pexels.mp4", "openface_default.wmv")
#: ``crowd_6.mp4``: six faces in ``CROWD_ROWS`` rows, the first clip's rate (30 fps) for as long as the shortest (6 s).
CROWD_SOURCES = ("liveportrait_d3_expressions.mp4", "pyfeat_WolfgangLanger_Pexels.mp4", "liveportrait_d12_glasses.mp4",
                 "openface_default.wmv", "liveportrait_d13_selfie.mp4", "openface_change_lighting.wmv")
CROWD_ROWS = 2
#: Clips joined by a cut for ``cut.mp4``.
CUT_SOURCES = ("pyfeat_WolfgangLanger_Pexels.mp4", "pyfeat_single_face.mp4")
#: The made-from-photos clips: frame size and rate.
PHOTO_CLIP_SIZE = (640, 360)
PHOTO_CLIP_FPS = 30.0
#: ``turn.mp4``: photos per stretch of the turn (frontal, half, profile, half, frontal), the face's
#: visible-landmark box height as a fraction of the frame height, frames each photo is held and cross-faded.
TURN_STEPS = (("frontal", 3), ("half", 4), ("profile", 5), ("half", 4), ("frontal", 3))
TURN_FACE_HEIGHT = 0.45
TURN_HOLD = 4
TURN_FADE = 6
#: ``profile_start.mp4``: faceless gap, fade-in and visible time of each face (seconds), its height.
PROFILE_GAP = 0.5
PROFILE_FADE = 0.2
PROFILE_SECONDS = 1.5
PROFILE_FACE_HEIGHT = 0.25
#: A face box is widened by this fraction of its size on each side before the background band is cut.
FACE_MARGIN = 0.25


def read_frames(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decoded BGR frames of a clip (at most ``limit``) and its frame rate."""
    with VideoSource(str(path)) as stream:
        fps = stream.info.fps
        frames = [f.image for f in itertools.islice(stream, limit)]
    if not frames:
        raise SourceError(f"no frame could be read from {path}")
    return frames, fps


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Frames to an MP4 (OpenCV's mp4v) at ``fps``; all frames must share one size."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SourceError(f"cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def face_boxes(frames: list[np.ndarray], every: int = 5) -> list[Box]:
    """Raw face boxes MediaPipe (short and full range) finds on every ``every``-th frame."""
    boxes = []
    for full_range in (False, True):
        detector = MediaPipeDetector(full_range=full_range)
        boxes += [d.box for frame in frames[::every] for d in detector.detect(frame)]
        detector.close()
    return boxes


def background_region(frames: list[np.ndarray]) -> Box:
    """The larger band of the frame, full height, left or right of every face box of the clip (widened by
    :data:`FACE_MARGIN`); where neither is a tenth of the frame, the larger full-width band above or below."""
    boxes = face_boxes(frames)
    if not boxes:
        raise RuntimeError("no face found in the clip, so its background cannot be told apart")
    height, width = frames[0].shape[:2]
    left = max(0, int(min(b.x0 - FACE_MARGIN * b.width for b in boxes)))
    right = min(width, int(np.ceil(max(b.x1 + FACE_MARGIN * b.width for b in boxes))))
    top = max(0, int(min(b.y0 - FACE_MARGIN * b.height for b in boxes)))
    bottom = min(height, int(np.ceil(max(b.y1 + FACE_MARGIN * b.height for b in boxes))))
    def area(band: Box) -> float:
        return max(band.width, 0) * max(band.height, 0)

    # beside the face first: above it there is hair the face box leaves out, below it the body
    for bands in ((Box(0, 0, left, height), Box(right, 0, width, height)),
                  (Box(0, 0, width, top), Box(0, bottom, width, height))):
        best = max(bands, key=area)
        if area(best) >= 0.1 * width * height:
            return best
    raise RuntimeError("the face leaves no background band of a tenth of the frame")


def background(frame: np.ndarray, region: Box) -> np.ndarray:
    """The ``region`` of ``frame`` scaled up to the frame's size."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in (region.x0, region.y0, region.x1, region.y1))
    return cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (width, height), interpolation=cv2.INTER_LINEAR)


def faceless_layout(face_frames: int, fps: float) -> list[tuple[bool, int]]:
    """The stretches of a faceless clip made from ``face_frames`` frames of a clip: ``(background?,
    frames)`` in order (:data:`FACELESS_PATTERN`)."""
    halves = iter((face_frames // 2, face_frames - face_frames // 2))
    return [(False, next(halves)) if seconds is None else (True, round(seconds * fps)) for seconds in FACELESS_PATTERN]


def make_faceless_clip(source: Path, out: Path, limit: int | None = None) -> tuple[Path, int]:
    """The clip's (first ``limit`` frames') two halves between stretches of its own background (module
    doc); returns the file and the number of background frames. RuntimeError if a detector finds a face
    in the background."""
    frames, fps = read_frames(source, limit)
    region = background_region(frames)
    halves = iter((frames[:len(frames) // 2], frames[len(frames) // 2:]))
    made: list[np.ndarray] = []
    faceless = 0
    for is_background, count in faceless_layout(len(frames), fps):
        if not is_background:
            made += next(halves)
            continue
        # the background moves on with the clip, cycling through its frames from where the cut is
        start = len(made) % len(frames)
        stretch = [background(frames[(start + k) % len(frames)], region) for k in range(count)]
        if face_boxes(stretch, every=1):
            raise RuntimeError(f"a detector finds a face in the background of {source.name}")
        made += stretch
        faceless += count
    return write_clip(out, made, fps), faceless


def make_side_by_side_clip(sources: list[Path], out: Path, limit: int | None = None,
                           height: int = SIDE_BY_SIDE_HEIGHT, stagger: float = 0.0, rows: int = 1) -> Path:
    """``sources`` (at most ``limit`` frames of each) scaled to ``height`` and placed left to right,
    sampled at the first clip's frame times for as long as the shortest. With ``stagger`` > 0, panel k
    shows its own clip's background (:func:`background`) for its first k · ``stagger`` seconds, so the
    faces come in one after another without a cut, as people walk into a room. With ``rows`` > 1 the
    panels, each ``height / rows`` high, fill that many rows left to right and top to bottom; a shorter
    row is padded with black on the right."""
    clips = [read_frames(s, limit) for s in sources]
    regions = [background_region(frames) if k and stagger else None for k, (frames, _) in enumerate(clips)]
    fps = clips[0][1]
    duration = min(len(frames) / rate for frames, rate in clips)
    panel_height, per_row = height // rows, -(-len(clips) // rows)
    frames_out = []
    for index in range(int(duration * fps)):
        t = index / fps
        parts = []
        for k, ((frames, rate), region) in enumerate(zip(clips, regions)):
            frame = frames[min(int(t * rate), len(frames) - 1)]
            if region is not None and t < k * stagger:
                frame = background(frame, region)
            scale = panel_height / frame.shape[0]
            parts.append(cv2.resize(frame, (round(frame.shape[1] * scale), panel_height),
                                    interpolation=cv2.INTER_AREA))
        lines = [np.hstack(parts[r * per_row:(r + 1) * per_row]) for r in range(rows)]
        width = max(line.shape[1] for line in lines)
        frames_out.append(np.vstack([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]))
    return write_clip(out, frames_out, fps)


def shrink_into_frame(frame: np.ndarray, scale: float) -> np.ndarray:
    """``frame`` scaled by ``scale`` and pasted centred into a black frame of its own size."""
    height, width = frame.shape[:2]
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(frame)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def make_small_face_clip(source: Path, out: Path, face_px: float = 40.0,
                         limit: int | None = None) -> tuple[Path, float]:
    """The small-face version of ``source``; returns it and the face width in pixels measured with
    MediaPipe full range on the written clip's first 30 frames."""
    frames, fps = read_frames(source, limit)
    detector = MediaPipeDetector(full_range=True)
    widths = [d[0].box.width for d in (detector.detect(f) for f in frames[::10]) if d]
    if not widths:
        raise RuntimeError("no face found in the source clip to scale")
    write_clip(out, [shrink_into_frame(f, face_px / float(np.median(widths))) for f in frames], fps)
    written = [d[0].box.width for d in (detector.detect(f) for f in read_frames(out)[0][:30]) if d]
    detector.close()
    return out, float(np.median(written)) if written else float("nan")


def make_cut_clip(sources: list[Path], out: Path, limit: int | None = None) -> tuple[Path, int]:
    """The clips one after the other: hard cuts onto another person. Each following clip is scaled and
    shifted so its first face lands where the previous clip's last face was — the hard case, two
    similarly framed shots, where a tracker would otherwise follow the face across the cut. Returns
    the file and the index of the first frame after the first cut."""
    detector = MediaPipeDetector()
    frames, fps = read_frames(sources[0], limit)
    first_after = len(frames)
    height, width = frames[0].shape[:2]
    for source in sources[1:]:
        shot = read_frames(source, limit)[0]
        before, after = (detector.detect(f) for f in (frames[-1], shot[0]))
        if not before or not after:
            raise RuntimeError(f"no face to align at the cut into {source.name}")
        a, b = calibrated_box(before[0]), calibrated_box(after[0])
        scale = a.size / b.size
        matrix = np.float32([[scale, 0, a.center[0] - scale * b.center[0]],
                             [0, scale, a.center[1] - scale * b.center[1]]])
        frames += [cv2.warpAffine(f, matrix, (width, height)) for f in shot]
    detector.close()
    return write_clip(out, frames, fps), first_after


@dataclass(frozen=True)
class TurnedFace:
    """A MERL-RAV photo as the turn clips use it: turned to the right (mirrored when it was turned left),
    with its visible points' landmark box in the (mirrored) photo's pixels."""

    path: Path
    mirrored: bool
    box: Box
    hidden: int

    def image(self) -> np.ndarray:
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read {self.path}")
        return image[:, ::-1] if self.mirrored else image


def turned_faces(data: Path) -> dict[str, list[TurnedFace]]:
    """MERL-RAV faces by stretch of a turn — ``frontal`` (no hidden point), ``half``, ``profile`` — each
    list ordered by the number of points the turn hides (then by name: deterministic)."""
    stretches = {"frontal": ("frontal",), "half": ("lefthalf", "righthalf"), "profile": ("left", "right")}
    with (data / "faces_meta.json").open(encoding="utf-8") as f:
        meta = [m for m in json.load(f) if "yaw_bucket" in m]
    found: dict[str, list[TurnedFace]] = {}
    for stretch, buckets in stretches.items():
        chosen = [m for m in meta if m["yaw_bucket"] in buckets and (stretch != "frontal" or m["n_self_occluded"] == 0)]
        faces = []
        for m in sorted(chosen, key=lambda m: (m["n_self_occluded"], m["image"])):
            points = read_pts(data / m["pts"])
            mirrored = m["yaw_bucket"].startswith("left")
            if mirrored:  # x → W − 1 − x, the project's flip
                points[:, 0] = cv2.imread(str(data / m["image"]), cv2.IMREAD_COLOR).shape[1] - 1 - points[:, 0]
            faces.append(TurnedFace(data / m["image"], mirrored, landmark_box(points), m["n_self_occluded"]))
        found[stretch] = faces
    return found


def spread(items: list, count: int) -> list:
    """``count`` items evenly spaced through ``items``, first and last included (in order)."""
    return [items[round(k)] for k in np.linspace(0, len(items) - 1, count)]


def place_face(face: TurnedFace, height: float, center: tuple[float, float],
               size: tuple[int, int] = PHOTO_CLIP_SIZE) -> np.ndarray:
    """The photo scaled so its visible-landmark box is ``height`` px high, that box centred on ``center``,
    on a black frame of ``size``."""
    scale = height / face.box.height
    cx, cy = face.box.center
    matrix = np.float32([[scale, 0, center[0] - scale * cx], [0, scale, center[1] - scale * cy]])
    return cv2.warpAffine(face.image(), matrix, size, flags=cv2.INTER_LINEAR)


def make_turn_clip(data: Path, out: Path) -> tuple[Path, int]:
    """``turn.mp4`` (module doc); returns it and the number of its frames."""
    faces = turned_faces(data)
    steps: list[TurnedFace] = []
    peak = len(TURN_STEPS) // 2
    for k, (stretch, count) in enumerate(TURN_STEPS):
        if k == peak:
            steps += spread(faces[stretch], count)
            continue
        pool = spread(faces[stretch], 2 * count)  # other photos on the way back, in the reverse order
        steps += pool[::2] if k < peak else pool[1::2][::-1]
    width, height = PHOTO_CLIP_SIZE
    stills = [place_face(f, TURN_FACE_HEIGHT * height, (width / 2, height / 2)).astype(np.float32) for f in steps]
    frames = []
    for current, following in zip(stills, stills[1:] + [None]):
        frames += [current] * TURN_HOLD
        if following is not None:
            frames += [(1 - a) * current + a * following for a in np.arange(1, TURN_FADE + 1) / (TURN_FADE + 1)]
    return write_clip(out, [np.clip(f, 0, 255).astype(np.uint8) for f in frames], PHOTO_CLIP_FPS), len(frames)


def profile_onsets(count: int) -> list[float]:
    """Seconds at which each face of ``profile_start.mp4`` starts to fade in."""
    period = PROFILE_GAP + PROFILE_FADE + PROFILE_SECONDS
    return [k * period + PROFILE_GAP for k in range(count)]


def make_profile_clip(data: Path, out: Path) -> tuple[Path, int]:
    """``profile_start.mp4`` (module doc); returns it and the number of faces in it."""
    faces = turned_faces(data)["profile"]
    width, height = PHOTO_CLIP_SIZE
    rng = np.random.default_rng(0)  # where each face is: deterministic
    gap, fade, shown = (round(s * PHOTO_CLIP_FPS) for s in (PROFILE_GAP, PROFILE_FADE, PROFILE_SECONDS))
    face_px = PROFILE_FACE_HEIGHT * height
    frames = []
    for face in faces:
        frames += [np.zeros((height, width, 3), np.uint8)] * gap
        x, y = rng.uniform(face_px, width - face_px), rng.uniform(face_px, height - face_px)
        for k in range(fade + shown):
            still = place_face(face, face_px * (1 + 0.002 * k), (x + 0.3 * k, y))  # a slow drift and zoom
            frames.append((still * min(1.0, (k + 1) / (fade + 1))).astype(np.uint8))
    return write_clip(out, frames, PHOTO_CLIP_FPS), len(faces)


def make_all(videos: Path, out: Path, limit: int | None = None, face_px: float = 40.0,
             data: Path | None = None) -> list[str]:
    """Every derived clip into ``out`` (the clips made from photos only with ``data``, the shared annotated
    faces); returns one line per clip saying what it is."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [*((f"faceless_{Path(name).stem}.mp4", name) for name in FACELESS_SOURCES),
            ("side_by_side_2.mp4", SIDE_BY_SIDE_SOURCES[:2]), ("side_by_side_3.mp4", SIDE_BY_SIDE_SOURCES),
            ("side_by_side_3_staggered.mp4", STAGGERED_SOURCES), ("crowd_6.mp4", CROWD_SOURCES),
            ("small_face.mp4", FACELESS_SOURCES[0]), ("cut.mp4", CUT_SOURCES)]
    lines = []
    for name, using in tqdm(jobs, desc="making clips", unit="clip"):
        target = out / name
        if name.startswith("faceless_"):
            _, faceless = make_faceless_clip(videos / using, target, limit)
            lines.append(f"{name}: {using} in two halves between stretches of its own background "
                         f"({' + '.join('half' if s is None else f'{s:g} s' for s in FACELESS_PATTERN)}; "
                         f"{faceless} background frames)")
        elif name.startswith("side_by_side_"):
            stagger = STAGGER if name.endswith("_staggered.mp4") else 0.0
            make_side_by_side_clip([videos / n for n in using], target, limit, stagger=stagger)
            lines.append(f"{name}: {' | '.join(using)} side by side at {SIDE_BY_SIDE_HEIGHT} px high"
                         + (f", panel k showing its background for its first {stagger:g} k s" if stagger else ""))
        elif name == "crowd_6.mp4":
            make_side_by_side_clip([videos / n for n in using], target, limit, rows=CROWD_ROWS)
            lines.append(f"{name}: {' | '.join(using)} in {CROWD_ROWS} rows, {SIDE_BY_SIDE_HEIGHT} px high in all")
        elif name == "small_face.mp4":
            _, width = make_small_face_clip(videos / using, target, face_px, limit)
            lines.append(f"{name}: {using} shrunk into a black frame of its size, face {width:.0f} px wide")
        else:
            _, first_after = make_cut_clip([videos / n for n in using], target, limit)
            lines.append(f"{name}: {' then '.join(using)}, the second framed where the first face was "
                         f"(cut before frame {first_after})")
    if data is not None:
        _, frames = make_turn_clip(data, out / "turn.mp4")
        lines.append(f"turn.mp4: MERL-RAV photos turning frontal → profile → frontal, cross-faded ({frames} frames)")
        _, faces = make_profile_clip(data, out / "profile_start.mp4")
        lines.append(f"profile_start.mp4: {faces} MERL-RAV profiles, each fading in over a faceless gap")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.make_clips", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the clips into (created)")
    parser.add_argument("--videos", type=Path, default=SHARED_VIDEOS, help="folder of the shared clips")
    parser.add_argument("--frames", type=int, default=None,
                        help="use at most N frames of each source (default: whole clips)")
    parser.add_argument("--face-px", type=float, default=40.0, help="face width in the small-face clip")
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help="the shared annotated faces, for the turn and profile clips ('' to skip them)")
    args = parser.parse_args(argv)
    data = args.data if str(args.data) not in ("", ".") else None
    try:
        for line in make_all(args.videos, args.out, args.frames, args.face_px, data):
            print(line)
    except (SourceError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
