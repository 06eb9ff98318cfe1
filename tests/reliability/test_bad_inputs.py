"""Bad input and security, datasets and checkpoints: every fault is a clear error naming the file.

Datasets: label ids beyond the class table, image/label size mismatch, truncated PNGs, a missing
manifest, a sha256 mismatch, shard paths escaping the root. Checkpoints: truncated, of another
method, or holding a pickled object (refused by ``weights_only=True`` without running it).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from sislab.datasets.checks import verify_dataset
from sislab.datasets.manifest import ClassInfo, Manifest, ShardInfo, SplitInfo, load_manifest
from sislab.datasets.pipeline import _Decode
from sislab.datasets.preprocess import Preprocess
from sislab.datasets.shards import Row, read_shard, write_shard
from sislab.datasets.storage import resolve
from sislab.errors import CheckpointError, DataError
from sislab.trainers.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


GOOD_IMAGE = _png(np.full((8, 8, 3), 100, np.uint8))
ROWS = {
    "good": Row("good", GOOD_IMAGE, _png(np.ones((8, 8), np.uint8)), None, 8, 8),
    "label_id": Row("label_id", GOOD_IMAGE, _png(np.full((8, 8), 9, np.uint8)), None, 8, 8),
    "size": Row("size", GOOD_IMAGE, _png(np.ones((4, 8), np.uint8)), None, 8, 8),
    "truncated": Row("truncated", GOOD_IMAGE[: len(GOOD_IMAGE) // 2], _png(np.ones((8, 8), np.uint8)), None, 8, 8),
}  # fmt: skip


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
    decode = _Decode(Preprocess("fixed", (8, 8), train=False), manifest.training_ids(), False, skip)
    return decode(table)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("label_id", r"label ids \[9\] are not in the class table"),
        ("size", "image is 8x8 but its label map is 8x4"),
        ("truncated", "(image file is truncated|cannot identify image|broken data stream)"),
    ],
)
def test_bad_rows_stop_the_run_naming_shard_row_and_key(tmp_path, key, message) -> None:
    location = resolve(str(tmp_path / "ds"))
    shard = write_shard(location, "train", 0, [ROWS["good"], ROWS[key]])
    classes = [ClassInfo(id=i, name=f"c{i}", colour=(i, i, i)) for i in range(3)]
    manifest = Manifest(name="bad", classes=classes, splits={"train": SplitInfo(shards=[shard])})
    with pytest.raises(DataError, match=message) as err:
        _decode(location, manifest, shard)
    assert (
        f"corrupt sample in shard train/part-00000.parquet row 1 (key '{key}')" in err.value.message
    )
    assert "on_corrupt: skip" in err.value.fix


def test_skip_keeps_good_rows_and_verify_lists_the_bad_ones(dataset) -> None:
    location, manifest, shard = dataset
    out = _decode(location, manifest, shard, skip=True)
    assert out["valid"].tolist() == [True, False, False, False]  # what survived: the good row
    result = verify_dataset(str(location.root))
    bad = "\n".join(result.bad_rows)
    assert "key 'label_id'" in bad and "key 'truncated'" in bad and not result.bad_shards


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
    with pytest.raises(CheckpointError, match="truncated or not a sislab checkpoint") as err:
        load_checkpoint(folder, "spade")
    assert str(folder / "state.pt") in err.value.message
    assert "UnpicklingError" in err.value.message  # weights_only=True refused the object
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt")
    state = folder / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"state.pt: checkpoint is truncated") as err:
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
