"""The four GroupDNet applications write grids from a checkpoint trained a few iterations."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from sislab.cli import sample
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.checkpoint import CheckpointMeta, save_checkpoint

SPEC = {
    "name": "gdn-apps",
    "method": "groupdnet",
    "dataset": {"uri": "synthetic://shapes?size=64&classes=4&num=4&val=2", "image_size": [64, 64]},
    "model": {"ngf": 4, "encoder_ndf": 4, "ndf": 4, "num_d": 1, "n_layers_d": 2,
              "num_upsampling_layers": "normal", "cg_mlp_style": "cityscapes",
              "decoder_groups": [4, 4, 2, 2, 1, 1, 1]},
    "train": {"epochs": 1, "lr_decay_epochs": 1, "batch_size": 2, "max_iters_per_epoch": 2},
    "resources": {"num_workers": 1},
}  # fmt: skip


def test_applications_write_grids(tmp_path: Path) -> None:
    spec = spec_from_dict(SPEC)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, torch.device("cpu"), 1, lambda m: m)
    for batch in build.synthetic_source(spec, 0, 1).batches(0):
        procedure.train_step(batch)
    meta = CheckpointMeta(method="groupdnet", epoch=1, iteration=2, images_seen=4,
                          config=spec.model_dump(mode="json"))  # fmt: skip
    folder = save_checkpoint(tmp_path / "ckpt", meta, {"procedure": procedure.state_dict()})
    parser = argparse.ArgumentParser()
    sample.register(parser.add_subparsers())
    widths = {"multimodal": 1 + 3, "mixture": 1 + 3, "manipulate": 1 + 2, "morph": 1 + 3}
    for mode, tiles in widths.items():
        out = tmp_path / f"{mode}.png"
        args = parser.parse_args(["sample", str(folder), "--mode", mode, "--class", "1",
                                  "--out", str(out), "--num-samples", "3", "--steps", "3"])  # fmt: skip
        assert args.handler(args) == 0
        assert Image.open(out).size == (64 * tiles, 64)
