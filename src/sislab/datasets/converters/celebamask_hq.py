"""CelebAMask-HQ from the official download, part masks merged into one label map.

Layout: ``CelebA-HQ-img/<k>.jpg`` (1024²) and ``CelebAMask-HQ-mask-anno/<k // 2000>/
<k:05d>_<part>.png`` (512², one binary mask per part). The merge follows the dataset's own
face_parsing/Data_preprocessing/g_mask.py (switchablenorms/CelebAMask-HQ), which the
SPADE-family code (SEAN, SC-GAN) trains on: parts are painted in ``PARTS`` order with id
``position + 1`` where the mask is non-zero, later parts overwriting earlier ones; 0 is
background. Split as SEAN's: images 0..27,999 train, 28,000..29,999 val.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from sislab.datasets.converters.base import DatasetFormat, Sample, require_dir
from sislab.datasets.preprocess import load_strict

# g_mask.py label_list ("list2"): the painting order, which decides overlaps.
PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip
NUM_TRAIN = 28_000
MASK_SIZE = 512


def list_samples(src: Path) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Samples of train and val (every image has a label; absent parts are simply absent)."""
    images = require_dir(src / "CelebA-HQ-img", "CelebA-HQ-img/")
    anno = require_dir(src / "CelebAMask-HQ-mask-anno", "CelebAMask-HQ-mask-anno/")
    splits: dict[str, list[Sample]] = {"train": [], "val": []}
    for img in sorted(images.glob("*.jpg"), key=lambda p: int(p.stem)):
        k = int(img.stem)
        folder = anno / str(k // 2000)
        parts = tuple(str(folder / f"{k:05d}_{part}.png") for part in PARTS)
        split = "train" if k < NUM_TRAIN else "val"
        splits[split].append(Sample(img.stem, str(img), parts))
    return {s: v for s, v in splits.items() if v}, []


def merge_parts(paths: tuple[str, ...]) -> np.ndarray:
    """The merged uint8 label map of one face (g_mask.py semantics)."""
    label = np.zeros((MASK_SIZE, MASK_SIZE), dtype=np.uint8)
    for idx, path in enumerate(paths):
        if not Path(path).is_file():
            continue
        with Image.open(path) as img:
            load_strict(img)  # a truncated mask is an error, never a padded one
            arr = np.asarray(img)
        # g_mask.py reads with cv2 and keeps channel 0; the masks are grey, any channel will do.
        mask = arr[..., 0] if arr.ndim == 3 else arr
        if mask.shape != label.shape:
            raise ValueError(f"part mask {path} is {mask.shape}, expected {label.shape}")
        label[mask != 0] = idx + 1
    return label


def label_bytes(sample: Sample) -> bytes:
    """Merged label as a lossless PNG."""
    buf = io.BytesIO()
    Image.fromarray(merge_parts(sample.label)).save(buf, format="PNG")
    return buf.getvalue()


FORMAT = DatasetFormat("celebamask-hq", "celebamask_hq", False, list_samples, label_bytes)
