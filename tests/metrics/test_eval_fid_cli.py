"""``sislab eval fid``: folders, dataset URIs and precomputed features; errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sislab.cli.main import main
from sislab.metrics import fid, inception
from sislab.metrics.provenance import WeightsInfo

STUB_SHA = "5" * 64


class StatsNet(torch.nn.Module):
    """A cheap stand-in for the Inception (a 2048-d FID costs a minute of sqrtm on 2 cores)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(2)
        return torch.cat([flat.mean(2), flat.std(2), flat.pow(3).mean(2)], 1)


@pytest.fixture
def stub_inception(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict]:
    calls: list[dict] = []

    def load(paths=None, allow_download=False, sha256=None, device="cpu", source="fid_inception"):
        calls.append({"paths": paths, "source": source, "device": device})
        return StatsNet(), WeightsInfo(source, STUB_SHA)

    monkeypatch.setattr(inception, "load_fid_inception", load)
    monkeypatch.setenv("SISLAB_CACHE_DIR", str(tmp_path / "cache"))
    return calls


def _pngs(folder: Path, count: int, side: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    return folder


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["eval", "fid", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_folders_give_fid_kid_counts_and_weights(
    stub_inception: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _pngs(tmp_path / "real", 14, 24, seed=0)
    gen = _pngs(tmp_path / "gen", 12, 16, seed=1)
    out = _run_json(capsys, str(real), str(gen), "--kid-subsets", "7", "--kid-subset-size", "4")
    assert out["real"]["count"] == 14 and out["gen"]["count"] == 12
    assert out["real"]["size"] == [16, 16]  # auto: resized to the generated images' size
    assert out["inception"] == {
        "name": "fid_inception",
        "sha256": STUB_SHA,
        "substitute": False,
        "note": "",
    }
    assert out["kid_subsets"] == 7 and out["kid_subset_size"] == 4
    assert np.isfinite(out["fid"]) and out["fid"] > 0 and out["kid_std"] >= 0

    assert main(["eval", "fid", str(real), str(gen), "--real-size", "native"]) == 0
    text = capsys.readouterr().out
    assert "FID " in text and "KID " in text and "±" in text
    assert "real N=14" in text and "gen  N=12" in text and STUB_SHA in text
    assert "resized" not in text


def test_dataset_reference_is_cached_between_runs(
    stub_inception: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = _pngs(tmp_path / "gen", 12, 16, seed=2)
    uri = "synthetic://shapes?size=16&classes=3&num=11&val=12"
    first = _run_json(capsys, uri, str(gen), "--weights", "/w/default_1.pt", "--device", "cpu")
    assert first["real"]["cached"] is False and first["real"]["count"] == 12
    assert stub_inception[0]["paths"] == {"fid_inception": "/w/default_1.pt"}
    second = _run_json(capsys, uri, str(gen), "--split", "val")
    assert second["real"]["cached"] is True and second["fid"] == first["fid"]
    train = _run_json(capsys, uri, str(gen), "--split", "train")
    assert train["real"]["count"] == 11 and train["real"]["cached"] is False


def test_precomputed_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 0.2
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b.astype(np.float32))
    out = _run_json(capsys, "--features", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"))
    assert out["fid"] == pytest.approx(fid.fid_from_features(a, b.astype(np.float32)), rel=1e-12)
    assert (out["kid_mean"], out["kid_std"]) == pytest.approx(
        fid.kernel_inception_distance(a, b.astype(np.float32))
    )
    assert out["kid_subset_size"] == 30 and out["inception"] is None
    assert out["real"]["count"] == 40 and out["gen"]["count"] == 30


def test_bad_feature_files_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, flat, wide = tmp_path / "good.npy", tmp_path / "flat.npy", tmp_path / "wide.npy"
    np.save(good, np.zeros((5, 4)))
    np.save(flat, np.zeros(20))
    np.save(wide, np.zeros((5, 6)))
    assert main(["eval", "fid", "--features", str(good), str(flat)]) == 2
    err = capsys.readouterr().err
    assert str(flat) in err and "2-D" in err and "Fix:" in err and "Traceback" not in err
    assert main(["eval", "fid", "--features", str(good), str(wide)]) == 2
    err = capsys.readouterr().err
    assert str(good) in err and str(wide) in err and "D=4" in err and "D=6" in err
    assert main(["eval", "fid", "--features", str(good), str(tmp_path / "absent.npy")]) == 2
    assert "absent.npy" in capsys.readouterr().err


def test_bad_sources_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["eval", "fid", str(tmp_path / "nope"), str(tmp_path / "empty")]) == 2
    assert "neither a folder nor a dataset URI" in capsys.readouterr().err
    assert main(["eval", "fid", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 2
    assert "holds no png/jpg/jpeg images" in capsys.readouterr().err
    assert main(["eval", "fid"]) == 2
    assert "nothing to compare" in capsys.readouterr().err


@pytest.mark.slow
def test_real_inception_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = _pngs(tmp_path / "real", 3, 32, seed=3)
    gen = _pngs(tmp_path / "gen", 3, 32, seed=4)
    out = _run_json(capsys, str(real), str(gen), "--batch-size", "2")
    assert out["inception"]["sha256"].startswith("7ff4a85c")
    assert out["real"]["count"] == out["gen"]["count"] == 3
    assert np.isfinite(out["fid"]) and np.isfinite(out["kid_mean"])
