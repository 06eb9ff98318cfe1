"""Image sources, batched feature extraction and the cached reference statistics of FID/KID."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sislab.datasets.preprocess import resize_image
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri, render_sample
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.errors import DataError
from sislab.metrics.features import ImageSource, extract_features, open_source, source_features
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.reference import reference_statistics

SYNTH = "synthetic://shapes?size=16&classes=3&num=4&val=5&seed=1"


class StatsNet(torch.nn.Module):
    """Cheap stand-in for the Inception: per-channel mean, std and 3rd moment of [-1, 1] images."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(2)
        return torch.cat([flat.mean(2), flat.std(2), flat.pow(3).mean(2)], 1)


def _write_pngs(folder: Path, count: int, side: int, seed: int) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(count)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return images


def test_folder_source_is_sorted_rgb_and_skips_other_files(tmp_path: Path) -> None:
    images = _write_pngs(tmp_path, 3, 8, seed=0)
    Image.fromarray(images[0][..., 0]).save(tmp_path / "grey.PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    assert source.kind == "folder" and source.count() == 4
    read = list(source.iter_images())
    for got, want in zip(read[:3], images, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(read[3], np.repeat(images[0][..., :1], 3, axis=2))


def test_batches_group_by_size_or_resize_bicubic(tmp_path: Path) -> None:
    small = _write_pngs(tmp_path, 3, 8, seed=1)
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(tmp_path / "zz.png")
    source = open_source(str(tmp_path))
    assert [tuple(b.shape) for b in source.batches(2)] == [
        (2, 3, 8, 8),
        (1, 3, 8, 8),
        (1, 3, 12, 10),
    ]
    resized = torch.cat(list(source.batches(50, size=(6, 5))))
    assert resized.shape == (4, 3, 6, 5) and resized.dtype == torch.uint8
    np.testing.assert_array_equal(
        resized[1].permute(1, 2, 0).numpy(), resize_image(small[1], (6, 5))
    )


def test_dataset_sources_read_shards_and_synthetic_alike(tmp_path: Path) -> None:
    params = parse_synthetic_uri(SYNTH)
    write_synthetic(resolve(str(tmp_path / "ds")), params)
    sharded = open_source(str(tmp_path / "ds"), "val")
    synthetic = open_source(SYNTH, "val")
    assert sharded.kind == synthetic.kind == "dataset"
    assert sharded.count() == synthetic.count() == 5
    first = render_sample(4, num_classes=3, size=16, seed=1, variation=params.variation)[0]
    for a, b in zip(sharded.iter_images(limit=3), synthetic.iter_images(limit=3), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(next(sharded.iter_images()), first)
    with pytest.raises(DataError, match="no split 'test'"):
        ImageSource("dataset", str(tmp_path / "ds"), "test").count()
    with pytest.raises(DataError, match="neither a folder nor a dataset URI"):
        open_source(str(tmp_path / "absent"))


def test_pixels_go_in_as_pytorch_fid_unit_images() -> None:
    class Recorder(StatsNet):
        def features_unit(self, unit: torch.Tensor) -> torch.Tensor:
            self.seen = unit
            return super().forward(unit)

    net = Recorder()
    pixels = torch.randint(0, 256, (3, 3, 5, 5), dtype=torch.uint8)
    out = extract_features(net, [pixels], batch_size=2)
    assert out.dtype == np.float64 and out.shape == (3, 9)
    # The last chunk of batch_size 2 holds the third image; ToTensor's u8 / 255 exactly.
    assert torch.equal(net.seen, pixels[2:].float() / 255)
    images = torch.rand(2, 3, 5, 5) * 2 - 1
    np.testing.assert_array_equal(extract_features(net, [images]), net(images).double().numpy())


def test_reference_is_cached_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SISLAB_CACHE_DIR", str(tmp_path / "cache"))
    source = open_source(SYNTH, "val")
    info = WeightsInfo("fid_inception", "a" * 64)
    first = reference_statistics(source, StatsNet(), info, size=(12, 12))
    assert not first.from_cache and first.path is not None and first.path.is_file()
    assert first.path.parent == tmp_path / "cache" / "fid-reference"
    assert first.count == 5 and first.mu.shape == (9,) and first.sigma.shape == (9, 9)
    again = reference_statistics(source, StatsNet(), info, size=(12, 12))
    assert again.from_cache and again.path == first.path
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.sigma, first.sigma)
    expected = source_features(StatsNet(), source, size=(12, 12))
    np.testing.assert_array_equal(first.features, expected.astype(np.float32).astype(np.float64))
    # Any part of the key gives another file: resolution, weights, image count.
    other = [
        reference_statistics(source, StatsNet(), info, size=(16, 16)),
        reference_statistics(source, StatsNet(), WeightsInfo("fid_inception", "b" * 64)),
        reference_statistics(source, StatsNet(), info, size=(12, 12), limit=4),
    ]
    assert len({first.path, *(s.path for s in other)}) == 4
    assert not any(s.from_cache for s in other)
    assert not list((tmp_path / "cache" / "fid-reference").glob("*.tmp"))


def test_substitute_weights_are_never_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLAB_CACHE_DIR", str(tmp_path / "cache"))
    info = WeightsInfo("fid_inception", "", substitute=True, note="random")
    stats = reference_statistics(open_source(SYNTH, "val"), StatsNet(), info)
    assert stats.path is None and not (tmp_path / "cache").exists()


def test_train_statistics_of_a_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sislab.metrics.reference import train_statistics
    from sislab.spec.loader import spec_from_dict

    monkeypatch.setenv("SISLAB_CACHE_DIR", str(tmp_path / "cache"))
    spec = spec_from_dict(
        {
            "name": "x",
            "dataset": {"uri": SYNTH.replace("num=4", "num=7"), "image_size": [12, 10]},
            "eval": {"train_reference_images": 6},
        }
    )
    info = WeightsInfo("fid_inception", "c" * 64)
    mu, sigma = train_statistics(spec, StatsNet(), info)
    expected = reference_statistics(
        ImageSource("dataset", spec.dataset.uri, "train"), StatsNet(), info, (12, 10), limit=6
    )
    assert expected.from_cache and expected.count == 6
    np.testing.assert_array_equal(mu, expected.mu)
    np.testing.assert_array_equal(sigma, expected.sigma)
