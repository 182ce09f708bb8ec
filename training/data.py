"""Torch datasets over core's readers: records are decoded once into memory-bounded loose crops."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from core.offline.datasets import FaceRecord
from core.geometry import CROP_MARGIN, INPUT_SIZE, crop_from_landmarks, transform_points, warp_to_crop
from core.runtime import to_model_input
from core.schemes import get_scheme
from training.augment import AugmentConfig, augment, crop_with_jitter

#: Cached images are loose crops 2.4× the landmark box: enough for any rotation/scale jitter of the
#: 1.5× policy crop. Their side keeps the policy crop's resolution (1.6 × the input size), which bounds
#: memory for full-size datasets: every face is decoded once and training never touches the disk.
CACHE_MARGIN = 2.4


def cache_size(input_size: int) -> int:
    """Side of a cached loose crop for a model input of ``input_size`` px."""
    return int(np.ceil(input_size * CACHE_MARGIN / CROP_MARGIN))


def loose_crop(record: FaceRecord, input_size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Decode one record into a loose crop (image, landmarks in that crop; hidden points NaN)."""
    side = cache_size(input_size)
    sample = record.load()
    matrix = crop_from_landmarks(sample.landmarks, side, CACHE_MARGIN)
    return warp_to_crop(sample.image, matrix, side), transform_points(sample.landmarks, matrix).astype(np.float32)


def load_cached(records: list[FaceRecord], desc: str = "loading faces",
                input_size: int = INPUT_SIZE) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode each record once into its loose crop."""
    return [loose_crop(record, input_size) for record in tqdm(records, desc=desc, unit="face", leave=False)]


def to_tensor(crop_bgr: np.ndarray) -> torch.Tensor:
    """uint8 BGR HWC → float RGB CHW in [0, 1], the model-file input convention."""
    return torch.from_numpy(to_model_input(crop_bgr[None]))[0]


class FaceDataset(Dataset):
    """Policy crops of cached faces; augmented when ``train`` (a fresh random draw every access).

    ``in_memory=False`` decodes the photo again on every access instead: training never wants that, but
    ``training.throughput`` measures what the cache saves against it.
    """

    def __init__(self, records: list[FaceRecord], train: bool, augment_config: AugmentConfig = AugmentConfig(),
                 seed: int = 0, input_size: int = INPUT_SIZE, in_memory: bool = True) -> None:
        schemes = {r.scheme for r in records}
        if len(schemes) != 1:
            raise ValueError(f"a dataset must use one landmark scheme, got {sorted(schemes)}")
        self.scheme = get_scheme(schemes.pop())
        self.records = records
        self.input_size = input_size
        self.cached = (load_cached(records, "loading train faces" if train else "loading val faces", input_size)
                       if in_memory else None)
        self.train = train
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def face(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The loose crop and its landmarks, from memory or (``in_memory=False``) from disk."""
        return self.cached[index] if self.cached is not None else loose_crop(self.records[index], self.input_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, landmarks = self.face(index)
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            crop, pts = augment(image, landmarks, self.scheme, rng, self.augment_config, self.input_size)
        else:
            crop, pts = crop_with_jitter(image, landmarks, None, self.augment_config, self.input_size)
        return to_tensor(crop), torch.from_numpy(pts)

    def policy_shapes(self) -> np.ndarray:
        """``[N, L, 2]`` un-augmented crop-space shapes (hidden points NaN): what templates are built from."""
        return np.stack([crop_with_jitter(*self.face(i), None, self.augment_config, self.input_size)[1]
                         for i in range(len(self))])


def cv2_threads_off() -> None:
    """OpenCV's own thread pool fights torch's for the same cores inside data workers."""
    cv2.setNumThreads(0)
