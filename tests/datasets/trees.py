"""Tiny source trees in the exact official layouts of each dataset, for converter tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def _save(path: Path, array: np.ndarray, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())
    return path


def _image(rng: np.random.Generator, h: int = 8, w: int = 16) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def cityscapes(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """leftImg8bit/ + gtFine/ with labelIds, instanceIds (16-bit) and color; 3 train, 1 val."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split, city, n in (("train", "aachen", 3), ("val", "frankfurt", 1)):
        for i in range(n):
            key = f"{city}_{i:06d}_000019"
            _save(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", _image(rng))
            label = rng.integers(0, 34, (8, 16), dtype=np.uint8)
            inst = np.where(label >= 24, label.astype(np.uint16) * 1000 + i, label).astype(
                np.uint16
            )
            base = root / "gtFine" / split / city / key
            _save(Path(f"{base}_gtFine_labelIds.png"), label)
            _save(Path(f"{base}_gtFine_instanceIds.png"), inst)
            _save(Path(f"{base}_gtFine_color.png"), _image(rng))
            Path(f"{base}_gtFine_polygons.json").write_text("{}")
            expected[key] = {"label": label, "instance": inst}
    return expected


def ade20k(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """ADEChallengeData2016/{images,annotations}/{training,validation}; 2 train, 1 val."""
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    base.mkdir(parents=True)
    (base / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n")
    (base / "sceneCategories.txt").write_text("")
    expected = {}
    for official, prefix, n in (("training", "train", 2), ("validation", "val", 1)):
        for i in range(1, n + 1):
            key = f"ADE_{prefix}_{i:08d}"
            _save(base / "images" / official / f"{key}.jpg", _image(rng), "JPEG")
            label = rng.integers(0, 151, (8, 16), dtype=np.uint8)
            _save(base / "annotations" / official / f"{key}.png", label)
            expected[key] = {"label": label}
    return expected


def coco_stuff(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """train2017/, val2017/ and stuffthingmaps_trainval2017/{train2017,val2017}; 2 + 1."""
    rng = np.random.default_rng(seed)
    expected = {}
    for official, ids in (("train2017", (9, 25)), ("val2017", (139,))):
        for i in ids:
            key = f"{i:012d}"
            _save(root / official / f"{key}.jpg", _image(rng), "JPEG")
            label = rng.integers(0, 182, (8, 16), dtype=np.uint8)
            label[0, :4] = 255
            _save(root / "stuffthingmaps_trainval2017" / official / f"{key}.png", label)
            expected[key] = {"label": label}
    return expected


CELEBA_PARTS = ("skin", "nose", "l_eye", "hair", "neck", "cloth")


def celebamask_hq(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """CelebA-HQ-img/<k>.jpg + CelebAMask-HQ-mask-anno/<k//2000>/<k:05d>_<part>.png, k=0,1,28000.

    Part masks overlap (skin under everything, hair over skin), as in the real data.
    """
    from sislab.datasets.converters.celebamask_hq import PARTS

    rng = np.random.default_rng(seed)
    expected = {}
    for k in (0, 1, 28000):
        _save(root / "CelebA-HQ-img" / f"{k}.jpg", _image(rng, 32, 32), "JPEG")
        label = np.zeros((512, 512), dtype=np.uint8)
        for part in CELEBA_PARTS:
            top, left = rng.integers(0, 400, 2)
            mask = np.zeros((512, 512), dtype=np.uint8)
            mask[top : top + 100 + (part == "skin") * 200, left : left + 100] = 255
            # The official masks are 3-channel grey PNGs.
            _save(
                root / "CelebAMask-HQ-mask-anno" / str(k // 2000) / f"{k:05d}_{part}.png",
                np.stack([mask] * 3, -1),
            )
        # Expected merge computed independently of the converter: paint in g_mask.py order.
        for idx, part in enumerate(PARTS):
            p = root / "CelebAMask-HQ-mask-anno" / str(k // 2000) / f"{k:05d}_{part}.png"
            if p.exists():
                label[np.asarray(Image.open(p))[..., 0] > 0] = idx + 1
        expected[str(k)] = {"label": label}
    return expected


def deepfashion(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """SMIS layout: train/, test/ images and cihp_{train,test}_mask/ PNGs; 2 + 1."""
    rng = np.random.default_rng(seed)
    expected = {}
    for phase, names in (("train", ("fashion_a", "fashion_b")), ("test", ("fashion_c",))):
        for name in names:
            _save(root / phase / f"{name}.jpg", _image(rng), "JPEG")
            label = rng.integers(0, 8, (8, 16), dtype=np.uint8)
            _save(root / f"cihp_{phase}_mask" / f"{name}.png", label)
            expected[name] = {"label": label}
    return expected


BUILDERS = {
    "cityscapes": cityscapes,
    "ade20k": ade20k,
    "coco-stuff": coco_stuff,
    "celebamask-hq": celebamask_hq,
    "deepfashion": deepfashion,
}
