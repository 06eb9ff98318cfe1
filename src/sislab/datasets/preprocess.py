"""Decoding and the SPADE-family preprocessing of one sample, in numpy and PIL.

SPADE code (NVlabs/SPADE data/base_dataset.py ``get_transform``): images are resized BICUBIC and
label/instance maps NEAREST; 'fixed' resizes straight to the crop size, 'resize_and_crop' resizes
to a square ``load_size`` and takes a random ``crop_size`` crop; a random horizontal flip (p=0.5)
follows at train time. At test time SPADE sets ``load_size = crop_size``, so evaluation images are
only resized. One-hot encoding and the instance edge map happen later, in the model input.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

PreprocessMode = Literal["fixed", "resize_and_crop", "none"]

_STRICT_LOAD = threading.Lock()


def load_strict(img: Image.Image) -> None:
    """``img.load()`` that raises on a truncated file (``OSError: image file is truncated``).

    A truncated PNG or JPEG whose header is intact opens fine and fails only when its pixels
    are read. PIL pads such a file with black instead when ``ImageFile.LOAD_TRUNCATED_IMAGES``
    is on, a process-wide flag any imported library may set: the load then runs with it off.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        img.load()
        return
    with _STRICT_LOAD:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            img.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = True


def open_image(data: bytes, what: str) -> Image.Image:
    """``Image.open`` of encoded bytes, with an error that says which part failed.

    Raises:
        ValueError: No image format PIL knows, or a header cut short.
    """
    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        reason = "no image header" if isinstance(err, UnidentifiedImageError) else str(err)
        raise ValueError(f"{what}: not a file PIL can read ({reason}, {len(data)} bytes)") from None


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) RGB. Raises on any decode error or truncation."""
    with open_image(data, "image") as img:
        load_strict(img)
        return np.asarray(img.convert("RGB"))


def decode_label(data: bytes) -> np.ndarray:
    """Label PNG bytes -> uint8 (H, W) stored ids (grey or palette PNG)."""
    with open_image(data, "label map") as img:
        load_strict(img)
        if img.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"label map has mode {img.mode}, expected a single-channel PNG")
        arr = np.asarray(img)
    if arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError("label ids outside 0..255")
        arr = arr.astype(np.uint8)
    return arr


def decode_instance(data: bytes) -> np.ndarray:
    """Instance PNG bytes (8- or 16-bit, e.g. Cityscapes instanceIds) -> int32 (H, W)."""
    with open_image(data, "instance map") as img:
        load_strict(img)
        return np.asarray(img).astype(np.int32)


def compact_instance(instance: np.ndarray) -> np.ndarray:
    """An instance map as uint16, the dtype the data pipeline keeps in the object store.

    The models read only instance boundaries (SPADE's ``get_edges``: a pixel whose id differs
    from a 4-neighbour's), which survive any one-to-one renumbering. Ids within 0..65535 (every
    8- or 16-bit PNG, e.g. Cityscapes' instanceIds) are kept as they are; a map with ids outside
    that range (a 32-bit source) is renumbered 0, 1, ... in id order. Half the bytes of int32.

    Raises:
        ValueError: The map has more than 65536 distinct ids.
    """
    if instance.dtype == np.uint16:
        return instance
    if instance.size == 0 or (instance.min() >= 0 and instance.max() <= 65535):
        return instance.astype(np.uint16)
    ids, dense = np.unique(instance, return_inverse=True)
    if len(ids) > 65536:
        raise ValueError(f"instance map has {len(ids)} distinct ids, at most 65536 are kept")
    return dense.reshape(instance.shape).astype(np.uint16)


def decode_sample(
    image: bytes,
    label: bytes,
    instance: bytes | None,
    has_instance: bool,
    stored_size: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Decode one stored row and check that its parts agree.

    A label or instance map may be stored at another resolution than its image (CelebAMask-HQ:
    1024² images, 512² masks; SPADE resizes each to the output size), but not at another aspect
    ratio: resizing both to the output size would then silently misalign the labels with the
    pixels they describe, so that is an error.

    Args:
        image: Encoded image bytes.
        label: Label PNG bytes.
        instance: Instance PNG bytes (None when the dataset has no instance maps).
        has_instance: Whether the dataset has instance maps (then ``instance`` is required).
        stored_size: The row's ``(width, height)`` columns (None: a sample not stored yet).

    Returns:
        uint8 (H, W, 3) image, uint8 (H, W) stored label ids, int32 (H, W) instance map or None.

    Raises:
        ValueError: A part does not decode (or is truncated), is missing, or has another size.
    """
    pixels = decode_image(image)
    h, w = pixels.shape[:2]
    if stored_size is not None and tuple(stored_size) != (w, h):
        raise ValueError(f"image is {w}x{h} but the row says {stored_size[0]}x{stored_size[1]}")
    ids = decode_label(label)
    _same_aspect((h, w), ids.shape, "label map")
    inst = None
    if has_instance:
        if instance is None:
            raise ValueError("instance map missing")
        inst = decode_instance(instance)
        _same_aspect((h, w), inst.shape, "instance map")
    return pixels, ids, inst


def _same_aspect(image_hw: tuple[int, int], map_hw: tuple[int, ...], what: str) -> None:
    (h, w), (mh, mw) = image_hw, map_hw
    if h * mw != w * mh:
        raise ValueError(
            f"image is {w}x{h} but its {what} is {mw}x{mh}: another aspect ratio, so the two "
            "cannot be resized into alignment"
        )


def resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of a uint8 (H, W, 3) image to ``hw`` (no-op when already that size)."""
    if image.shape[:2] == hw:
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.BICUBIC))


def resize_map(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest resize of a label or instance map, dtype kept."""
    if arr.shape[:2] == hw:
        return arr
    src = arr.astype(np.int32) if arr.dtype != np.uint8 else arr
    out = np.asarray(Image.fromarray(src).resize((hw[1], hw[0]), Image.NEAREST))
    return out.astype(arr.dtype)


@dataclass(frozen=True)
class Preprocess:
    """What to do to every sample of a split.

    Attributes:
        mode: 'fixed', 'resize_and_crop' or 'none' (SPADE ``preprocess_mode``).
        image_size: Final (height, width): SPADE's crop size and aspect ratio.
        load_size: Square side before the random crop for 'resize_and_crop' (None: no margin).
        train: Random crop and flip only at train time.
        flip: Random horizontal flip (train only).
    """

    mode: PreprocessMode
    image_size: tuple[int, int]
    load_size: int | None = None
    train: bool = True
    flip: bool = True

    def load_shape(self) -> tuple[int, int]:
        """Shape after the deterministic resize (what the Ray Data stage emits)."""
        if self.mode == "resize_and_crop" and self.train:
            side = max(self.load_size or 0, *self.image_size)
            return (side, side)
        return self.image_size

    def resize(
        self, image: np.ndarray, label: np.ndarray, instance: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Deterministic part: resize to ``load_shape`` (image bicubic, maps nearest).

        Raises:
            ValueError: mode 'none' and the sample is not already ``image_size``.
        """
        hw = self.load_shape()
        if self.mode == "none" and (image.shape[:2] != hw or label.shape != hw):
            raise ValueError(f"sample is {image.shape[:2]}, preprocess 'none' needs {hw}")
        inst = resize_map(instance, hw) if instance is not None else None
        return resize_image(image, hw), resize_map(label, hw), inst

    def crop_flip(
        self,
        image: np.ndarray,
        label: np.ndarray,
        instance: np.ndarray | None,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Random part (train only): crop to ``image_size`` and flip, the same for all maps."""
        h, w = self.image_size
        top = left = 0
        if self.train and image.shape[:2] != (h, w):
            top = int(rng.integers(0, image.shape[0] - h + 1))
            left = int(rng.integers(0, image.shape[1] - w + 1))
        do_flip = self.train and self.flip and bool(rng.random() < 0.5)
        maps = [image, label, instance]
        for i, arr in enumerate(maps):
            if arr is None:
                continue
            arr = arr[top : top + h, left : left + w]
            maps[i] = arr[:, ::-1] if do_flip else arr
        return maps[0], maps[1], maps[2]


def to_model_arrays(image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched uint8 (B, H, W, 3) / int (B, H, W) -> float32 (B, 3, H, W) in [-1, 1] and int64
    (B, 1, H, W); SPADE normalises with mean 0.5, std 0.5."""
    img = np.empty((image.shape[0], 3, *image.shape[1:3]), np.float32)
    for i, one in enumerate(image):
        normalise_into(one, img[i])
    return img, label.astype(np.int64)[:, None]


def normalise_into(image: np.ndarray, out: np.ndarray) -> None:
    """uint8 (H, W, 3) -> ``out`` float32 (3, H, W) in [-1, 1], in two passes over ``out`` and
    no temporary (the batch is written where the model reads it; the values are those of
    ``float32(x) / 127.5 - 1``)."""
    np.divide(image.transpose(2, 0, 1), np.float32(127.5), out=out, dtype=np.float32)
    np.subtract(out, np.float32(1.0), out=out)
