import numpy as np
import pytest

from sislab.datasets.manifest import load_manifest
from sislab.datasets.preprocess import decode_image, decode_label
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri, render_sample
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.errors import SpecError


def test_render_is_deterministic_in_index_and_seed():
    a = render_sample(5, num_classes=6, size=32, seed=3)
    b = render_sample(5, num_classes=6, size=32, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (32, 32, 3) and a[0].dtype == np.uint8
    assert a[1].shape == (32, 32) and a[1].dtype == np.uint8
    assert not np.array_equal(a[0], render_sample(5, num_classes=6, size=32, seed=4)[0])
    assert not np.array_equal(a[0], render_sample(6, num_classes=6, size=32, seed=3)[0])


def test_labels_cover_the_classes():
    labels = np.stack([render_sample(i, num_classes=5, size=24, seed=0)[1] for i in range(30)])
    assert set(np.unique(labels)) == set(range(5))


def _within_class_spread(variation: float) -> float:
    """Mean per-class std of the instances' mean colours over many samples."""
    means: dict[int, list[np.ndarray]] = {}
    for i in range(40):
        image, label = render_sample(i, num_classes=4, size=32, seed=1, variation=variation)
        for k in np.unique(label):
            means.setdefault(int(k), []).append(image[label == k].mean(0))
    return float(np.mean([np.std(np.stack(v), 0).mean() for v in means.values()]))


def test_variation_scales_intra_class_spread():
    assert _within_class_spread(0.0) < 0.5 * _within_class_spread(1.0)


def test_uri_parsing():
    p = parse_synthetic_uri(
        "synthetic://shapes?size=48&classes=5&num=10&seed=2&variation=0.25&val=4"
    )
    assert (p.size, p.classes, p.num, p.seed, p.variation, p.val) == (48, 5, 10, 2, 0.25, 4)
    assert list(p.split_range("val")) == [10, 11, 12, 13]
    assert parse_synthetic_uri("synthetic://shapes").classes == 8
    with pytest.raises(SpecError, match="'colour'"):
        parse_synthetic_uri("synthetic://shapes?colour=1")
    with pytest.raises(SpecError, match="integer"):
        parse_synthetic_uri("synthetic://shapes?size=big")


def test_a_small_split_is_written_as_eight_shards(tmp_path):
    # 512 rows of 16x16 are a few hundred kB: one shard by the byte target, eight by rows.
    params = parse_synthetic_uri("synthetic://shapes?size=16&classes=3&num=512&val=2&seed=7")
    manifest = write_synthetic(resolve(str(tmp_path)), params)
    assert [s.rows for s in manifest.splits["train"].shards] == [64] * 8
    assert [s.rows for s in manifest.splits["val"].shards] == [2]


def test_written_shards_equal_render(tmp_path):
    params = parse_synthetic_uri("synthetic://shapes?size=16&classes=3&num=5&val=2&seed=7")
    write_synthetic(resolve(str(tmp_path)), params, target_bytes=2000)
    location = resolve(str(tmp_path))
    manifest = load_manifest(location)
    assert {s: i.rows for s, i in manifest.splits.items()} == {"train": 5, "val": 2}
    assert len(manifest.splits["train"].shards) > 1 and manifest.has_instance
    rows = [r for s in manifest.splits["val"].shards for r in read_shard(location, s).to_pylist()]
    image, label = render_sample(6, num_classes=3, size=16, seed=7)
    np.testing.assert_array_equal(decode_image(rows[1]["image"]), image)
    np.testing.assert_array_equal(decode_label(rows[1]["label"]), label)


def test_test_split_follows_val_and_is_empty_by_default():
    p = parse_synthetic_uri("synthetic://shapes?num=10&val=4&test=3")
    assert list(p.split_range("test")) == [14, 15, 16]
    assert list(parse_synthetic_uri("synthetic://shapes").split_range("test")) == []
    with pytest.raises(SpecError, match="'train', 'val' and 'test', not 'dev'"):
        p.split_range("dev")
    with pytest.raises(SpecError, match="test >= 0"):
        parse_synthetic_uri("synthetic://shapes?test=-1")
