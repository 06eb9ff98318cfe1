"""Inception features of image batches, and the image sources FID/KID read.

A source is a folder of PNG/JPEG files (pytorch-fid's convention: sorted, converted to RGB, not
recursive) or one split of a sislab dataset (a local folder or ``s3://`` prefix of Parquet shards,
or ``synthetic://...``), read with the datasets package's plain readers, not Ray. Real images can
be resized to the generated resolution first (bicubic, as VASIS evaluates), which is what
``size`` does.

Batches are ``uint8 [B, 3, H, W]`` pixels or float ``[B, 3, H, W]`` images in ``[-1, 1]``; pixels
go to the network as ``pixels / 255`` in pytorch-fid's ``[0, 1]`` convention, exactly as
pytorch-fid's folder loader feeds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from sislab.datasets.manifest import Manifest
from sislab.datasets.preprocess import resize_image
from sislab.datasets.split_reader import iter_rows, open_uri, split_count
from sislab.datasets.storage import Location, StorageOptions
from sislab.datasets.synthetic import SyntheticParams
from sislab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_BATCH_SIZE = 50  # pytorch-fid's default


@contextlib.contextmanager
def _full_precision() -> Iterator[None]:
    # cuDNN convolutions default to TF32 on Ampere and newer, which moves Inception features by
    # ~1e-3 relative; FID should not depend on which GPU or global flag a run happened to have.
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


def extract_features(
    model: torch.nn.Module,
    batches: Iterable[torch.Tensor],
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
) -> np.ndarray:
    """Run a FID Inception over image batches without gradients.

    Args:
        model: A ``FIDInceptionV3`` (``forward`` takes ``[-1, 1]``, ``features_unit`` ``[0, 1]``)
            or any module mapping ``[-1, 1]`` images to ``[B, D]``.
        batches: ``[B, 3, H, W]`` tensors, ``uint8`` pixels or float images in ``[-1, 1]``.
        device: Where the network runs (it is moved there).
        batch_size: Split larger input batches into chunks of this many images.

    Returns:
        float64 ``[N, D]`` features in input order (``[0, D]`` for no images).
    """
    device = torch.device(device)
    model = model.to(device).eval()
    unit = getattr(model, "features_unit", None)
    chunks: list[np.ndarray] = []
    with torch.no_grad(), _full_precision():
        for batch in batches:
            if batch.ndim != 4 or batch.shape[1] != 3:
                raise DataError(
                    f"image batches must be [B, 3, H, W], got {tuple(batch.shape)}",
                    fix="pass RGB images with the channel axis second",
                )
            for part in batch.split(batch_size or max(len(batch), 1)):
                part = part.to(device)
                if part.dtype == torch.uint8:
                    pixels = part.float() / 255
                    out = unit(pixels) if unit is not None else model(pixels * 2 - 1)
                else:
                    out = model(part.float())
                chunks.append(out.double().cpu().numpy())
    if not chunks:
        return np.zeros((0, 0), dtype=np.float64)
    return np.concatenate(chunks).reshape(sum(len(c) for c in chunks), -1)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (PNG/JPEG, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image_file(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err}", fix="remove or replace it") from None


@dataclass(frozen=True)
class ImageSource:
    """Images to score: a folder of image files or one split of a sislab dataset.

    Attributes:
        kind: ``folder`` or ``dataset``.
        location: The folder path, or the dataset URI (local, ``s3://``, ``synthetic://``).
        split: Dataset split (``None`` for folders).
        storage: Endpoint and region of an ``s3://`` dataset (default: the AWS environment).
    """

    kind: Literal["folder", "dataset"]
    location: str
    split: str | None = None
    storage: StorageOptions | None = None

    @property
    def label(self) -> str:
        """How the source is named in messages and reports."""
        return self.location if self.split is None else f"{self.location} [{self.split}]"

    def open_dataset(self) -> tuple[Manifest | None, Location | None, SyntheticParams | None]:
        """The manifest and shard location, or the synthetic parameters (folders: all None)."""
        if self.kind == "folder":
            return None, None, None
        return open_uri(self.location, self.storage)

    def count(self) -> int:
        """Number of images the source holds."""
        if self.kind == "folder":
            return len(list_images(Path(self.location)))
        return split_count(self.location, self.split or "val", self.storage)

    def iter_images(self, limit: int | None = None) -> Iterator[np.ndarray]:
        """uint8 ``(H, W, 3)`` RGB images in a fixed order, the first ``limit`` only if given."""
        remaining = self.count() if limit is None else min(limit, self.count())
        if remaining <= 0:
            return
        if self.kind == "folder":
            for path in list_images(Path(self.location))[:remaining]:
                yield _read_image_file(path)
            return
        rows = iter_rows(self.location, self.split or "val", labels=False, storage=self.storage)
        for _, image, _ in rows:
            yield image
            remaining -= 1
            if remaining == 0:
                return

    def batches(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        size: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[torch.Tensor]:
        """``uint8 [B, 3, H, W]`` batches, resized bicubic to ``size`` (H, W) when given.

        Without ``size``, images of different sizes go into separate batches (the network
        resizes every image to 299x299 anyway).
        """
        pending: list[np.ndarray] = []
        for image in self.iter_images(limit):
            if size is not None:
                image = resize_image(image, size)
            if pending and (len(pending) == batch_size or pending[0].shape != image.shape):
                yield _stack(pending)
                pending = []
            pending.append(image)
        if pending:
            yield _stack(pending)


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def open_source(text: str, split: str = "val") -> ImageSource:
    """Interpret a command-line argument as an image folder or a dataset URI.

    ``s3://`` and ``synthetic://`` URIs, and local folders holding a ``dataset.json``, are
    datasets (read at ``split``); other local folders must hold PNG/JPEG files.

    Raises:
        DataError: The path does not exist, or a folder holds neither images nor a manifest.
    """
    if text.startswith(("s3://", "synthetic://")):
        return ImageSource("dataset", text, split)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{text} is neither a folder nor a dataset URI",
            fix="give an image folder, a dataset folder (with dataset.json), s3://... or "
            "synthetic://...",
        )
    if (path / "dataset.json").is_file():
        return ImageSource("dataset", str(path), split)
    if not list_images(path):
        raise DataError(
            f"{text} holds no {'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)} images",
            fix="point at the folder the images were saved in",
        )
    return ImageSource("folder", str(path))


def source_features(
    model: torch.nn.Module,
    source: ImageSource,
    device: str | torch.device = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    size: tuple[int, int] | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """float64 ``[N, D]`` features of a source's images (see ``ImageSource.batches``)."""
    return extract_features(model, source.batches(batch_size, size, limit), device, batch_size)


def first_image_size(source: ImageSource) -> tuple[int, int]:
    """(H, W) of a source's first image (generated folders have one size).

    Raises:
        DataError: The source holds no image.
    """
    for image in source.iter_images(limit=1):
        return image.shape[0], image.shape[1]
    raise DataError(f"{source.label} holds no images")
