"""Bad input and security, datasets and checkpoints: every fault is a clear error naming the file.

Datasets: label ids beyond the class table, image/label/instance maps of another aspect ratio, a
row whose width/height columns lie, truncated PNGs and JPEGs whose headers still decode (also with
PIL's process-wide LOAD_TRUNCATED_IMAGES turned on), a missing manifest, a sha256 mismatch, shard
paths escaping the root. Checkpoints: truncated, of another
method, or holding a pickled object (refused by ``weights_only=True`` without running it).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image, ImageFile

from sislab.datasets.checks import verify_dataset
from sislab.datasets.manifest import (
    ClassInfo,
    Manifest,
    ShardInfo,
    SplitInfo,
    load_manifest,
    save_manifest,
)
from sislab.datasets.pipeline import _Decode
from sislab.datasets.preprocess import Preprocess, decode_image
from sislab.datasets.shards import Row, read_shard, write_shard
from sislab.datasets.storage import resolve
from sislab.errors import CheckpointError, DataError
from sislab.trainers.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    save_meta,
)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _truncated_jpeg(height: int, width: int) -> bytes:
    """A noise JPEG cut in its scan data: the header still opens, the pixels do not all decode."""
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="JPEG", quality=95)
    full = buf.getvalue()
    scan = full.index(b"\xff\xda")  # start of scan: every header segment comes before it
    data = full[: scan + (len(full) - scan) // 2]
    with Image.open(io.BytesIO(data)) as img:  # what makes it a lie: it opens, with its size
        assert img.size == (width, height)
    return data


def _truncated_png(height: int, width: int) -> bytes:
    """A noise PNG cut inside its pixel data (IDAT): the header still opens, the pixels do not."""
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    full = _png(noise)
    idat = full.index(b"IDAT")
    data = full[: idat + (len(full) - idat) // 2]
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (width, height)
    return data


GOOD_IMAGE = _png(np.full((8, 8, 3), 100, np.uint8))
LABEL = _png(np.ones((8, 8), np.uint8))
INSTANCE = _png(np.arange(64, dtype=np.uint8).reshape(8, 8))
ROWS = {
    "good": Row("good", GOOD_IMAGE, LABEL, None, 8, 8),
    "label_id": Row("label_id", GOOD_IMAGE, _png(np.full((8, 8), 9, np.uint8)), None, 8, 8),
    "size": Row("size", GOOD_IMAGE, _png(np.ones((4, 8), np.uint8)), None, 8, 8),
    "truncated": Row("truncated", _truncated_png(8, 8), LABEL, None, 8, 8),
    "not_an_image": Row("not_an_image", GOOD_IMAGE[:20], LABEL, None, 8, 8),
    "truncated_jpeg": Row("truncated_jpeg", _truncated_jpeg(8, 8), LABEL, None, 8, 8),
    "row_size": Row("row_size", GOOD_IMAGE, LABEL, None, 16, 8),
}
# With instance maps (a dataset whose manifest has has_instance: true).
INSTANCE_ROWS = {
    "good": Row("good", GOOD_IMAGE, LABEL, INSTANCE, 8, 8),
    "instance_size": Row("instance_size", GOOD_IMAGE, LABEL, _png(np.ones((8, 4), np.uint8)), 8, 8),
    "no_instance": Row("no_instance", GOOD_IMAGE, LABEL, None, 8, 8),
}
BAD_ROW_MESSAGES = {
    "label_id": r"label ids \[9\] are not in the class table",
    "size": "image is 8x8 but its label map is 8x4: another aspect ratio",
    "truncated": "image file is truncated",
    "not_an_image": "image: not a file PIL can read",
    "truncated_jpeg": r"image file is truncated \(\d+ bytes not processed\)",
    "row_size": "image is 8x8 but the row says 16x8",
    "instance_size": "image is 8x8 but its instance map is 4x8: another aspect ratio",
    "no_instance": "instance map missing",
}


@pytest.fixture
def dataset(tmp_path: Path):
    location = resolve(str(tmp_path / "ds"))
    shard = write_shard(location, "train", 0, list(ROWS.values()))
    classes = [ClassInfo(id=i, name=f"c{i}", colour=(i, i, i)) for i in range(3)]
    manifest = Manifest(name="bad", classes=classes, splits={"train": SplitInfo(shards=[shard])})
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps(manifest.model_dump(mode="json")))
    return location, manifest, shard


def _decode(location, manifest, shard, skip: bool = False):
    table = read_shard(location, shard)
    n = table.num_rows
    table = table.append_column("shard", pa.array([shard.path] * n))
    table = table.append_column("row", pa.array(range(n), pa.int32()))
    table = table.append_column("error", pa.array([""] * n))
    decode = _Decode(
        Preprocess("fixed", (8, 8), train=False),
        manifest.training_ids(),
        manifest.has_instance,
        skip,
    )
    return decode(table)


@pytest.mark.parametrize(("key", "message"), sorted(BAD_ROW_MESSAGES.items()))
def test_bad_rows_stop_the_run_naming_shard_row_and_key(tmp_path, key, message) -> None:
    location = resolve(str(tmp_path / "ds"))
    rows = INSTANCE_ROWS if key in INSTANCE_ROWS else ROWS
    shard = write_shard(location, "train", 0, [rows["good"], rows[key]])
    classes = [ClassInfo(id=i, name=f"c{i}", colour=(i, i, i)) for i in range(3)]
    manifest = Manifest(
        name="bad",
        classes=classes,
        splits={"train": SplitInfo(shards=[shard])},
        has_instance=rows is INSTANCE_ROWS,
    )
    with pytest.raises(DataError, match=message) as err:
        _decode(location, manifest, shard)
    assert (
        f"corrupt sample in shard train/part-00000.parquet row 1 (key '{key}')" in err.value.message
    )
    assert "on_corrupt: skip" in err.value.fix and "sislab data verify" in err.value.fix


def test_skip_keeps_good_rows_and_verify_lists_the_bad_ones(dataset) -> None:
    location, manifest, shard = dataset
    out = _decode(location, manifest, shard, skip=True)
    # What survived: the good row only.
    assert out["valid"].tolist() == [True] + [False] * (len(ROWS) - 1)
    result = verify_dataset(str(location.root))
    assert not result.bad_shards and result.rows_checked == len(ROWS)
    where = f"{location.root}/train/part-00000.parquet"
    for row, key in enumerate(ROWS):
        found = [line for line in result.bad_rows if f"(key '{key}')" in line]
        if key == "good":
            assert not found
            continue
        assert len(found) == 1 and found[0].startswith(f"{where} row {row} (key '{key}'): ")
        assert re.search(BAD_ROW_MESSAGES[key], found[0]), found[0]


def test_truncation_is_caught_even_with_pil_padding_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any library may turn on PIL's process-wide padding of truncated files; decoding ignores it.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for key in ("truncated", "truncated_jpeg"):
        with pytest.raises(OSError, match="image file is truncated"):
            decode_image(ROWS[key].image)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is left as it was
    assert decode_image(GOOD_IMAGE).shape == (8, 8, 3)


def test_maps_at_another_resolution_of_the_same_aspect_are_resized_into_alignment(
    tmp_path: Path,
) -> None:
    # CelebAMask-HQ stores 1024² images with 512² masks; SPADE resizes each to the output size.
    left = np.zeros((4, 4), np.uint8)
    left[:, :2] = 2
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 255
    row = Row("half", _png(image), _png(left), _png(left), 8, 8)
    location = resolve(str(tmp_path / "ds"))
    shard = write_shard(location, "train", 0, [row])
    classes = [ClassInfo(id=i, name=f"c{i}", colour=(i, i, i)) for i in range(3)]
    manifest = Manifest(
        name="half", classes=classes, splits={"train": SplitInfo(shards=[shard])}, has_instance=True
    )
    save_manifest(location, manifest)
    out = _decode(location, manifest, shard)
    assert out["valid"].tolist() == [True]
    assert (out["label"][0][:, :4] == 2).all() and (out["label"][0][:, 4:] == 0).all()
    assert (out["instance"][0] == out["label"][0]).all()
    assert verify_dataset(str(location.root)).ok


def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"cannot read .*empty/dataset.json") as err:
        load_manifest(resolve(str(tmp_path / "empty")))
    assert "sislab data convert" in err.value.fix


def test_sha256_mismatch_names_the_shard(dataset) -> None:
    location, _manifest, shard = dataset
    path = Path(location.path(shard.path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"shard .*ds/train/part-00000.parquet is corrupt: sha256"):
        read_shard(location, shard)
    assert verify_dataset(str(location.root)).bad_shards


@pytest.mark.parametrize(
    "path", ["../outside.parquet", "a/../../x.parquet", "/etc/passwd", "s3://b/k", "a\\..\\x"]
)
def test_shard_paths_cannot_escape_the_root(dataset, path: str) -> None:
    location, manifest, _shard = dataset
    with pytest.raises(ValueError, match="must be relative and stay inside the root"):
        ShardInfo(path=path, rows=1, sha256="0" * 64)
    data = manifest.model_dump(mode="json")
    data["splits"]["train"]["shards"][0]["path"] = path
    Path(location.path("dataset.json")).write_text(json.dumps(data))
    with pytest.raises(
        DataError, match=r"(?s)invalid manifest .*dataset.json.*stay inside the root"
    ):
        load_manifest(location)


# Checkpoints ---------------------------------------------------------------------------------


class Payload:
    """Runs code when unpickled: what a hostile checkpoint would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _checkpoint(folder: Path, method: str = "spade") -> Path:
    meta = CheckpointMeta(method=method, epoch=1, iteration=2, images_seen=4)
    return save_checkpoint(folder, meta, {"procedure": {"w": torch.ones(3)}})


def test_pickled_object_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt")
    marker = tmp_path / "code-ran"
    torch.save({"procedure": Payload(marker)}, folder / "state.pt")
    # Its sha256 is not the one meta.json records: refused before torch reads it.
    with pytest.raises(CheckpointError, match=r"is not the [0-9a-f]{64} recorded in meta.json"):
        load_checkpoint(folder, "spade")
    assert not marker.exists()
    # A checkpoint without a recorded sha256 (written before sislab recorded one).
    meta = read_meta(folder)
    meta.state_sha256 = None
    save_meta(folder, meta)
    with pytest.raises(CheckpointError, match="truncated or not a sislab checkpoint") as err:
        load_checkpoint(folder, "spade")
    assert str(folder / "state.pt") in err.value.message
    assert "UnpicklingError" in err.value.message  # weights_only=True refused the object
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt")
    state = folder / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(
        CheckpointError, match=r"state.pt: checkpoint is truncated or corrupt"
    ) as err:
        load_checkpoint(folder, "spade")
    assert "resume from an earlier checkpoint" in err.value.fix
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"meta.json: unreadable checkpoint metadata"):
        load_checkpoint(folder, "spade")


def test_checkpoint_of_another_method_is_refused(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt", method="oasis")
    with pytest.raises(
        CheckpointError, match=r"checkpoint of method 'oasis', the trial trains 'spade'"
    ):
        load_checkpoint(folder, "spade")
    (folder / "meta.json").unlink()
    with pytest.raises(CheckpointError, match=r"meta.json: checkpoint has no meta.json"):
        load_checkpoint(folder, "spade")


def test_shard_checksum_is_the_manifest_hash(dataset) -> None:
    location, _, shard = dataset
    data = Path(location.path(shard.path)).read_bytes()
    assert hashlib.sha256(data).hexdigest() == shard.sha256
