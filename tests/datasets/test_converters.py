import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sislab.datasets.converters import FORMATS, convert
from sislab.datasets.converters.celebamask_hq import PARTS
from sislab.datasets.manifest import load_manifest
from sislab.datasets.preprocess import decode_instance, decode_label
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import resolve
from tests.datasets import trees

SPLITS = {
    "cityscapes": {"train": 3, "val": 1},
    "ade20k": {"train": 2, "val": 1},
    "coco-stuff": {"train": 2, "val": 1},
    "celebamask-hq": {"train": 2, "val": 1},
    "deepfashion": {"train": 2, "val": 1},
}


def _source_files(fmt: str, src: Path, key: str) -> tuple[Path, Path | None, Path | None]:
    """Where the official layout keeps a sample's image, label and instance files."""
    if fmt == "cityscapes":
        img = next(src.glob(f"leftImg8bit/*/*/{key}_leftImg8bit.png"))
        base = str(img).replace("leftImg8bit", "gtFine", 1)[: -len("_leftImg8bit.png")]
        return img, Path(base + "_gtFine_labelIds.png"), Path(base + "_gtFine_instanceIds.png")
    if fmt == "ade20k":
        img = next(src.glob(f"ADEChallengeData2016/images/*/{key}.jpg"))
        return img, Path(str(img).replace("images", "annotations")).with_suffix(".png"), None
    if fmt == "coco-stuff":
        img = next(src.glob(f"*2017/{key}.jpg"))
        return img, src / "stuffthingmaps_trainval2017" / img.parent.name / f"{key}.png", None
    if fmt == "celebamask-hq":
        return src / "CelebA-HQ-img" / f"{key}.jpg", None, None
    img = next(src.glob(f"*/{key}.jpg"))
    return img, src / f"cihp_{img.parent.name}_mask" / f"{key}.png", None


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_round_trip_bytes_ids_counts_hashes(fmt, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = trees.BUILDERS[fmt](src)
    report = convert(FORMATS[fmt], src, str(dst), workers=0)
    assert report.rows == SPLITS[fmt] and report.skipped == []

    location = resolve(str(dst))
    manifest = load_manifest(location)
    assert manifest.name == fmt
    assert {s: i.rows for s, i in manifest.splits.items()} == SPLITS[fmt]
    seen = set()
    for info in manifest.splits.values():
        for shard in info.shards:
            data = (dst / shard.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard.sha256
            table = read_shard(location, shard)
            for row in table.to_pylist():
                key = row["key"]
                seen.add(key)
                img, label, inst = _source_files(fmt, src, key)
                assert row["image"] == img.read_bytes()  # never re-encoded
                np.testing.assert_array_equal(decode_label(row["label"]), expected[key]["label"])
                if label is not None:
                    assert row["label"] == label.read_bytes()
                if inst is not None:
                    assert row["instance"] == inst.read_bytes()
                    np.testing.assert_array_equal(
                        decode_instance(row["instance"]), expected[key]["instance"]
                    )
                else:
                    assert row["instance"] is None
    assert seen == set(expected)
    assert manifest.has_instance == (fmt == "cityscapes")


def test_celebamask_merge_follows_g_mask_order(tmp_path):
    # hair (position 12) painted after skin (position 0): overlap pixels are hair.
    src = tmp_path / "src"
    trees.celebamask_hq(src)
    convert(FORMATS["celebamask-hq"], src, str(tmp_path / "dst"))
    location = resolve(str(tmp_path / "dst"))
    manifest = load_manifest(location)
    row = read_shard(location, manifest.splits["train"].shards[0]).to_pylist()[0]
    label = decode_label(row["label"])
    anno = src / "CelebAMask-HQ-mask-anno" / "0"
    skin = np.asarray(Image.open(anno / "00000_skin.png"))[..., 0] > 0
    hair = np.asarray(Image.open(anno / "00000_hair.png"))[..., 0] > 0
    assert (label[skin & hair] == PARTS.index("hair") + 1).all()
    assert (label[skin & ~hair] >= 1).all()
    assert manifest.classes[PARTS.index("hair") + 1].name == "hair"


def test_corrupt_and_unpaired_files_are_reported_and_skipped(tmp_path):
    src = tmp_path / "src"
    trees.ade20k(src)
    base = src / "ADEChallengeData2016"
    bad = base / "images" / "training" / "ADE_train_00000002.jpg"
    bad.write_bytes(bad.read_bytes()[:20])  # truncated JPEG
    (base / "images" / "training" / "ADE_train_00000009.jpg").write_bytes(b"x")  # no label
    report = convert(FORMATS["ade20k"], src, str(tmp_path / "dst"))
    reported = {Path(p).name: reason for p, reason in report.skipped}
    assert set(reported) == {"ADE_train_00000002.jpg", "ADE_train_00000009.jpg"}
    assert report.rows == {"train": 1, "val": 1}
    on_disk = json.loads((tmp_path / "dst" / "conversion_report.json").read_text())
    assert len(on_disk["skipped"]) == 2


def test_label_ids_outside_the_class_table_are_reported(tmp_path):
    src = tmp_path / "src"
    trees.deepfashion(src)
    label = src / "cihp_train_mask" / "fashion_a.png"
    trees._save(label, np.full((8, 16), 9, dtype=np.uint8))  # DeepFashion has ids 0..7
    report = convert(FORMATS["deepfashion"], src, str(tmp_path / "dst"))
    assert len(report.skipped) == 1 and "[9]" in report.skipped[0][1]


def test_resume_rewrites_only_missing_shards_in_parallel(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    trees.cityscapes(src)
    first = convert(FORMATS["cityscapes"], src, str(dst), target_bytes=1, workers=2)
    assert first.shards_written == 4 and first.shards_reused == 0
    manifest = (dst / "dataset.json").read_text()
    (dst / "train" / "part-00001.parquet").unlink()  # as if interrupted before this shard
    second = convert(FORMATS["cityscapes"], src, str(dst), target_bytes=1, workers=0)
    assert (second.shards_written, second.shards_reused) == (1, 3)
    assert (dst / "dataset.json").read_text() == manifest


def test_wrong_layout_names_what_is_missing(tmp_path):
    from sislab.errors import DataError

    with pytest.raises(DataError, match="leftImg8bit"):
        convert(FORMATS["cityscapes"], tmp_path, str(tmp_path / "dst"))


def test_a_split_is_planned_in_shards_of_an_eighth_of_its_rows_and_at_least_a_row_group(tmp_path):
    from sislab.datasets.converters.base import Sample, _plan
    from sislab.datasets.shards import MIN_SHARD_ROWS, MIN_SHARDS

    image = tmp_path / "a.png"
    image.write_bytes(b"x" * 1000)

    def samples(n: int) -> list[Sample]:
        return [Sample(f"k{i}", str(image), str(image)) for i in range(n)]

    # 1 MB of source in all: far under the 128 MB target, cut by rows alone.
    assert [len(g) for g in _plan(samples(512), 128 * 2**20)] == [64] * MIN_SHARDS
    assert [len(g) for g in _plan(samples(1000), 128 * 2**20)] == [125] * 8
    assert [len(g) for g in _plan(samples(100), 128 * 2**20)] == [MIN_SHARD_ROWS, 36]
    assert [len(g) for g in _plan(samples(40), 128 * 2**20)] == [40]
    # The byte target still cuts first where it is smaller.
    assert [len(g) for g in _plan(samples(10), 4000)] == [2, 2, 2, 2, 2]
