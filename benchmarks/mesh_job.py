"""The headless job done with MediaPipe Face Mesh instead of our tracker: the yardstick of the whole-job
benchmark (``benchmarks.whole_job``).

    python -m benchmarks.mesh_job --source CLIP [--output OUT.mp4] [--landmarks OUT.csv] [--max-frames N]
                                  [--max-faces N]

What a MediaPipe user writes for the same job: ``import mediapipe as mp``, read the video with OpenCV,
Face Mesh in video mode (``--max-faces`` faces, 1 by default; no iris refinement) on every frame, draw
the points with MediaPipe's own ``drawing_utils``, write one CSV row per face found (frame, timestamp,
faces, face, then x, y of the 468 points; a frame without a face gets one row with no points) and, with
``--output``, the annotated video. With one face Face Mesh stops detecting once it follows a face; with
more it runs its detector on every frame where it follows fewer than that many — what it costs to find
a second face, which our tracker always looks for, so on clips with several faces the yardstick must be
given at least their number (``benchmarks.whole_job --mesh-faces``). The video is encoded exactly as our recorder
encodes (PyAV, H.264 with :data:`core.io.recorder.X264_OPTIONS`, fragmented MP4, OpenCV's BGR → I420),
so the comparison measures the trackers, not two encoders.
"""
from __future__ import annotations

import argparse
import csv
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from core.io.recorder import X264_OPTIONS

MESH_POINTS = 468
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class VideoOut:
    """H.264 in fragmented MP4 through PyAV, with the recorder's encoder settings."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import av

        self.container = av.open(str(path), mode="w", format="mp4", options=dict(FRAGMENTED_MP4))
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = width - width % 2, height - height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.gop_size = max(1, round(fps))
        if codec == "libx264":
            self.stream.options = dict(X264_OPTIONS)
        self._frame = av.VideoFrame

    def write(self, image_bgr: np.ndarray) -> None:
        image = image_bgr[:self.stream.height, :self.stream.width]
        picture = self._frame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        self.container.mux(self.stream.encode(picture))

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()


def run(source: str, landmarks: Path, output: Path | None, max_frames: int | None, max_faces: int = 1) -> int:
    """Process ``source``; returns the number of frames."""
    import mediapipe as mp  # as a MediaPipe user imports it (the whole package)

    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise OSError(f"cannot open {source}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    video = VideoOut(output, fps, width, height) if output else None
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces,
                                         refine_landmarks=False)
    frames = 0
    with landmarks.open("w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["frame", "timestamp", "faces", "face"] + [f"{a}{i}" for i in range(MESH_POINTS) for a in "xy"])
        while max_frames is None or frames < max_frames:
            ok, image = capture.read()
            if not ok:
                break
            result = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            faces = result.multi_face_landmarks or []
            stamp = [frames, f"{frames / fps:.4f}", len(faces)]
            writer.writerows([stamp + [k] + [f"{v:.2f}" for p in face.landmark for v in (p.x * width, p.y * height)]
                              for k, face in enumerate(faces)] or [stamp + [""]])
            if video is not None:
                for face in faces:
                    mp.solutions.drawing_utils.draw_landmarks(image, face)
                video.write(image)
            frames += 1
    mesh.close()
    capture.release()
    if video is not None:
        video.close()
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mesh_job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="video file")
    parser.add_argument("--landmarks", type=Path, help="CSV to write (default: --output with .csv, else mesh.csv)")
    parser.add_argument("--output", type=Path, help="annotated video to write (default: none, CSV only)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--max-faces", type=int, default=1, help="Face Mesh's max_num_faces (default 1)")
    args = parser.parse_args(argv)
    table = args.landmarks or (args.output.with_suffix(".csv") if args.output else Path("mesh.csv"))
    try:
        frames = run(args.source, table, args.output, args.max_frames, args.max_faces)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"frames: {frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
