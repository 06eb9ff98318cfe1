import argparse
import io

import numpy as np
import pytest
from PIL import Image

from sislab.cli import data as data_cli
from sislab.datasets.checks import inspect_dataset, verify_dataset
from sislab.datasets.manifest import Manifest, SplitInfo, load_manifest, save_manifest
from sislab.datasets.shards import Row, write_shard
from sislab.datasets.storage import resolve


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def synth(tmp_path):
    dst = tmp_path / "ds"
    code = _run(["data", "synth", str(dst), "--classes", "4", "--size", "16", "--num", "12",
                 "--seed", "0", "--val", "4", "--shard-mb", "0.002"])  # fmt: skip
    assert code == 0
    return dst


def test_verify_clean_dataset_passes(synth, capsys):
    assert _run(["data", "verify", str(synth)]) == 0
    assert "checked" in capsys.readouterr().out


def test_verify_flipped_bytes_exits_1_naming_the_shard(synth, capsys):
    manifest = load_manifest(resolve(str(synth)))
    bad = manifest.splits["train"].shards[1].path
    data = bytearray((synth / bad).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (synth / bad).write_bytes(bytes(data))
    assert _run(["data", "verify", str(synth)]) == 1
    out = capsys.readouterr().out
    assert f"BAD SHARD {synth}/{bad}" in out
    assert out.count("BAD SHARD") == 1


def test_verify_lists_rows_that_do_not_decode(tmp_path):
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    rows = [
        Row("good", png.getvalue(), png.getvalue(), None, 4, 4),
        Row("bad", b"\x89PNG broken", png.getvalue(), None, 4, 4),
    ]
    location = resolve(str(tmp_path))
    shard = write_shard(location, "train", 0, rows)
    from sislab.datasets.classes import voc_colour
    from sislab.datasets.manifest import ClassInfo

    classes = [ClassInfo(id=0, name="a", colour=voc_colour(0))]
    save_manifest(
        location, Manifest(name="t", classes=classes, splits={"train": SplitInfo(shards=[shard])})
    )
    result = verify_dataset(str(tmp_path))
    assert not result.ok and result.bad_shards == []
    assert len(result.bad_rows) == 1 and "row 1 (key 'bad')" in result.bad_rows[0]


def test_inspect_reports_counts_frequencies_and_sizes(synth, capsys):
    info = inspect_dataset(str(synth))
    train = info["splits"]["train"]
    assert train["rows"] == 12 and train["image_sizes"] == {"16x16": 12}
    assert abs(sum(train["class_pixel_freq"].values()) - 1.0) < 1e-3
    assert info["num_classes"] == 4
    assert _run(["data", "inspect", str(synth)]) == 0
    assert "class" in capsys.readouterr().out
