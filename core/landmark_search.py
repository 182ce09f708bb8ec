"""A last-resort face search with the landmark model itself, for faces the detectors miss (profiles).

MediaPipe's BlazeFace models and the Haar cascades are trained on faces that show both eyes; a face
turned to profile, small in the frame, is often found by neither (``benchmarks/RESULTS.md``, issue 23
item 2). The landmark model was trained on turned faces (MERL-RAV) and its anchor confidence scores
any crop, face or not, so a coarse grid of crops at a few face sizes, run in one batch, finds a face
wherever one crop holds enough of it: the best crop's landmarks give the face box, and a second crop
from that box refines it (the pipeline then crops a third time and accepts the face only if the model
is confident there, like any detection). A grid costs tens of inferences, so the pipeline runs it only
as the last stage of the ``auto`` cascade, only while nothing is tracked, on the search schedule's
slowest interval (``core.tracker.SearchSchedule``), and the search itself runs only the crops whose part
of the picture changed since that crop last found nothing there: on the same picture it would find
nothing again.
"""
from __future__ import annotations

import numpy as np

from core.decode import aggregate
from core.detection import Detection
from core.geometry import Box, crop_from_box, invert_affine, landmark_box, transform_points, warp_to_crop
from core.runtime import LandmarkModel
from core.shots import CHANGE_LEVEL, watch_cells, watch_image

#: Face sizes searched (the landmark box's side as a fraction of the frame height): a close-up or webcam
#: face, and a face across a desk; smaller faces are full range's. Two sizes make 21 crops on a 16:9
#: frame; the three sizes before (0.6, 0.4, 0.25: 38 crops) found no more on the made profile clip
#: (86 of 150 frames with a face either way, every face first found on the same frame) at 1.7x the cost.
SEARCH_SIZES = (0.5, 0.3)
#: Neighbouring crops of one size overlap by this fraction of the crop side.
SEARCH_OVERLAP = 0.25
#: A grid crop is refined only when the model's face confidence there reaches this.
CANDIDATE_CONFIDENCE = 0.45
#: The refined crop is reported as a face only at this confidence, above the tracker's 0.5 (on MERL-RAV
#: profiles refined crops reach 0.47–0.77). It does not keep every background out: on the three made faceless
#: clips' backgrounds refined crops reached 0.64 with the fp32 model (0.65 with INT8), on 10 of 115 sampled
#: frames above 0.6. The pipeline crops such a proposal again and starts a track only if that crop reaches
#: this confidence too (``CropRequest.start_confidence``): at the tracker's 0.5 a blurred shelf of the webcam
#: clip was followed for a few frames at 0.505–0.535 (``tests/core/test_profiles.py``, faceless stretches),
#: while the profiles it finds on the made profile-start clip reach 0.65–0.67 there.
FACE_CONFIDENCE = 0.6
#: A grid crop runs again only when this share of its cells (``core.shots.watch_image``) changed by
#: more than ``core.shots.CHANGE_LEVEL`` since it last scored below the candidate confidence. A face of
#: the smallest searched size covers 44 % of its crop, so even a fifth of it coming in exceeds this.
CHANGE_FRACTION = 0.01


class LandmarkSearch:
    """A :class:`core.detection.FaceDetector` that runs the landmark model on a grid of crops.

    Its boxes are landmark boxes already (``core.detection.calibrated_box`` leaves them as they are).
    """

    name = "landmark_search"

    def __init__(self, model: LandmarkModel, sizes: tuple[float, ...] = SEARCH_SIZES,
                 overlap: float = SEARCH_OVERLAP, candidate_confidence: float = CANDIDATE_CONFIDENCE,
                 face_confidence: float = FACE_CONFIDENCE, change_fraction: float = CHANGE_FRACTION) -> None:
        self.model = model
        self.sizes, self.overlap = sizes, overlap
        self.candidate_confidence, self.face_confidence = candidate_confidence, face_confidence
        self.change_fraction = change_fraction
        self._frame_shape: tuple[int, ...] = ()
        self._empty: dict[int, np.ndarray] = {}  # grid index -> its cells when its crop last proposed no face

    def grid(self, width: int, height: int) -> list[Box]:
        """Landmark-style boxes whose crops tile the frame at every size of :attr:`sizes`."""
        margin = self.model.info.crop_margin
        boxes = []
        for fraction in self.sizes:
            side = fraction * height
            crop = margin * side
            step = crop * (1 - self.overlap)
            xs = np.linspace(crop / 2, width - crop / 2, max(1, int(np.ceil((width - crop) / step)) + 1))
            ys = np.linspace(crop / 2, height - crop / 2, max(1, int(np.ceil((height - crop) / step)) + 1))
            boxes += [Box(x - side / 2, y - side / 2, x + side / 2, y + side / 2) for y in ys for x in xs]
        return boxes

    def _best_face(self, frame: np.ndarray, boxes: list[Box]) -> tuple[Box, float, np.ndarray]:
        """The landmark box and face confidence of the most confident crop among ``boxes``' (one batch),
        and every crop's face confidence. Only the best crop's anchors are aggregated: the others'
        landmarks and spreads would be thrown away, and on non-faces, where every anchor counts, the
        spreads alone were 9 ms of a 21-crop search."""
        info = self.model.info
        matrices = [crop_from_box(b, info.input_size, info.crop_margin) for b in boxes]
        anchors, confidences = self.model.run(np.stack([warp_to_crop(frame, m, info.input_size) for m in matrices]))
        scores = confidences.max(axis=1)
        best = int(scores.argmax())
        decoded = aggregate(anchors[best:best + 1], confidences[best:best + 1])
        points = transform_points(decoded.landmarks[0], invert_affine(matrices[best]))
        return landmark_box(points), float(decoded.confidence[0]), scores

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """The face of the most confident changed grid crop (:meth:`_changed_crops`), refined once, if
        that crop reaches :attr:`candidate_confidence` and the refined one :attr:`face_confidence` (one
        face per search: the search runs while nothing is tracked, and the tracker's periodic sweep
        finds the others once one is followed)."""
        height, width = frame_bgr.shape[:2]
        grid = self.grid(width, height)
        picture = watch_image(frame_bgr)
        cells = [watch_cells(b, self.model.info.crop_margin, frame_bgr.shape) for b in grid]
        todo = self._changed_crops(frame_bgr.shape, picture, cells)
        if not todo:
            return []
        box, score, scores = self._best_face(frame_bgr, [grid[k] for k in todo])
        for k in todo:
            self._empty[k] = picture[cells[k]].copy()
        if score < self.candidate_confidence:
            return []
        refined, score, _ = self._best_face(frame_bgr, [box])
        if score < self.face_confidence:
            return []
        del self._empty[todo[int(scores.argmax())]]  # a face there: looked at again, however the picture stays
        return [Detection(refined, score, self.name)]

    def _changed_crops(self, frame_shape: tuple[int, ...], picture: np.ndarray,
                       cells: list[tuple[slice, slice]]) -> list[int]:
        """Grid crops worth running: those never run (or not since they proposed a face), and those where
        more than :attr:`change_fraction` of their cells changed since they last ran."""
        if frame_shape != self._frame_shape:  # another grid: nothing is known about it
            self._frame_shape, self._empty = frame_shape, {}
        todo = []
        for k, region in enumerate(cells):
            before = self._empty.get(k)
            if before is None or (np.abs(picture[region] - before) > CHANGE_LEVEL).mean() > self.change_fraction:
                todo.append(k)
        return todo
