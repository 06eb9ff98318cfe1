"""The one registry of pretrained weights: name -> file, canonical URL and sha256, checked on load.

Sources, in order: the path or s3:// URI the spec gives (``weights.paths.NAME``), the file in
``$SISLAB_WEIGHTS_DIR`` (default ``~/.cache/sislab/weights``) under the registry file name, and, only
when the spec sets ``weights.allow_download``, the canonical URL. The sha256 (or, for torchvision
files that publish only a prefix, the prefix in the file name) is checked before anything is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from sislab.errors import WeightsError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsEntry:
    """A registered weights file.

    Args:
        name: Registry name used in specs (``weights.paths.<name>``).
        filename: File name looked up in the weights folder.
        url: Canonical download URL.
        sha256: Full sha256, or a hex prefix where the publisher gives only that.
        used_for: What needs it, for error messages.
    """

    name: str
    filename: str
    url: str
    sha256: str
    used_for: str


REGISTRY: dict[str, WeightsEntry] = {
    "vgg19": WeightsEntry(
        "vgg19",
        "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        # torchvision publishes the first 8 hex digits of the sha256 in the file name.
        "dcbb9e9d",
        "the VGG19 perceptual loss of SPADE-family methods",
    ),
}


def weights_dir() -> Path:
    """Folder searched for registry files when the spec names no path."""
    return Path(os.environ.get("SISLAB_WEIGHTS_DIR", "~/.cache/sislab/weights")).expanduser()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_s3(uri: str, target: Path) -> None:
    from sislab.datasets.storage import resolve

    location = resolve(uri)
    with location.fs.open_input_stream(location.root) as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)


def locate(name: str, paths: dict[str, str], allow_download: bool = False) -> Path:
    """Return a local, hash-checked copy of the weights registered as ``name``.

    Args:
        name: Registry name.
        paths: The spec's ``weights.paths`` (name -> local path or s3:// URI).
        allow_download: Whether the canonical URL may be used.

    Raises:
        WeightsError: Unknown name, file not found (the message says what to put where), or a
            sha256 mismatch (expected and actual hashes named).
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise WeightsError(
            f"no weights registered as {name!r}", fix=f"registered: {', '.join(sorted(REGISTRY))}"
        )
    source = paths.get(name)
    cache = weights_dir() / entry.filename
    fetched = False  # a temporary copy that moves into the cache once its hash is right
    if source and source.startswith("s3://"):
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as tmp:
            _fetch_s3(source, Path(tmp.name))
        candidate, fetched = Path(tmp.name), True
    elif source:
        candidate = Path(source).expanduser()
    elif cache.exists():
        candidate = cache
    elif allow_download:
        cache.parent.mkdir(parents=True, exist_ok=True)
        logger.info("downloading %s weights from %s", name, entry.url)
        with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as tmp:
            urllib.request.urlretrieve(entry.url, tmp.name)
        candidate, fetched = Path(tmp.name), True
    else:
        raise WeightsError(
            f"{name} weights not found: expected {entry.filename} (sha256 {entry.sha256}...) "
            f"for {entry.used_for}",
            fix=f"put the file from {entry.url} at {cache}, or set weights.paths.{name} to its "
            "local path or s3:// URI in the spec",
        )
    if not candidate.is_file():
        raise WeightsError(
            f"{name} weights: {candidate} does not exist",
            fix=f"set weights.paths.{name} to the path of {entry.filename}",
        )
    actual = sha256_of(candidate)
    if not actual.startswith(entry.sha256):
        if fetched:
            candidate.unlink()
        raise WeightsError(
            f"{name} weights at {source or candidate}: sha256 {actual} does not match the "
            f"registered {entry.sha256}",
            fix=f"use the original {entry.filename} from {entry.url}",
        )
    if fetched:
        candidate.replace(cache)
        candidate = cache
    return candidate


def load_state_dict(
    name: str, paths: dict[str, str], allow_download: bool = False
) -> dict[str, torch.Tensor]:
    """Locate, hash-check and load registry weights as a state dict (``weights_only=True``)."""
    path = locate(name, paths, allow_download)
    return torch.load(path, map_location="cpu", weights_only=True)


def try_load_state_dict(
    name: str, paths: dict[str, str], allow_download: bool = False
) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """Like ``load_state_dict`` but a missing file gives ``(None, reason)`` instead of an error.

    A file that exists with the wrong hash is still an error: silently training without a loss
    the user configured would be wrong.
    """
    try:
        return load_state_dict(name, paths, allow_download), None
    except WeightsError as err:
        if "not found" in err.message:
            return None, err.message
        raise
