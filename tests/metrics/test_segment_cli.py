"""``sislab eval train-segmenter`` and ``sislab eval segment`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from sislab.cli.main import main
from sislab.metrics.segmenters.data import load_split

URI = "synthetic://shapes?size=16&classes=3&num=16&val=4&seed=5"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "seg.pt"
    assert main(["eval", "train-segmenter", URI, "--out", str(out), "--epochs", "2"]) == 0
    return out


def test_train_prints_val_scores(checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    assert checkpoint.is_file() and checkpoint.with_suffix(".json").is_file()
    out = str(checkpoint.parent / "again.pt")
    assert main(["eval", "train-segmenter", URI, "--out", out, "--epochs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["miou"] <= 1.0 and result["path"] == out


def test_segment_dataset_and_folder(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    segmenter = f"builtin:{checkpoint}"
    assert main(["eval", "segment", URI, "--segmenter", segmenter, "--json"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert real["rows"] == 4 and real["source"] == "dataset"
    assert real["weights"][0]["name"] == segmenter and len(real["weights"][0]["sha256"]) == 64

    val = load_split(URI, "val", (16, 16))
    for key, image in zip(val.keys, val.images, strict=True):
        Image.fromarray(image).save(tmp_path / f"{key}.png")
    args = ["eval", "segment", str(tmp_path), "--dataset", URI, "--segmenter", segmenter]
    assert main([*args, "--per-class"]) == 0
    text = capsys.readouterr().out
    assert "scored     4 of 4 rows" in text and "mIoU" in text and "class   2" in text
    assert f"{real['miou']:.4f}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{folder}", "--segmenter", "builtin:x.pt"], "Fix: pass --dataset URI"),
        ([URI], "no published segmenter for dataset 'synthetic-shapes'"),
        ([URI, "--segmenter", "drn_d_105_cityscapes"], "scores cityscapes (35 label ids)"),
        ([URI, "--segmenter", "builtin:{folder}/none.pt"], "train-segmenter"),
        ([URI, "--segmenter", "nope"], "unknown segmenter 'nope'"),
        (["{folder}/missing", "--dataset", URI], "neither a dataset"),
    ],
)
def test_segment_errors_are_one_clear_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["eval", "segment", *(a.format(folder=tmp_path) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "segment", URI, "--size", "3x"])
    assert exit_info.value.code == 2 and "is not N or HxW" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["eval", "segment", URI, "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
