"""The best generator written as a state dict plus config, rebuilt and sampled without Ray."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.best_generator import load_best_generator, write_best_generator

SPEC = {
    "name": "g",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8", "image_size": [32, 32]},
    "model": {"ngf": 4, "ndf": 4},
    "resources": {"num_workers": 1},
}


def test_written_generator_loads_and_draws_the_same_images(tmp_path: Path) -> None:
    spec = spec_from_dict(SPEC)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, torch.device("cpu"), 1, lambda m: m)
    best = {"metric": "fid", "value": 12.5, "epoch": 3}
    files = write_best_generator(
        tmp_path, procedure, spec.model_dump(mode="json"), dataclasses.asdict(geometry), best
    )
    assert sorted(p.name for p in files) == ["config.json", "generator.pt"]
    loaded = load_best_generator(tmp_path)
    assert loaded.best == best and loaded.geometry == geometry
    label = torch.randint(0, 4, (2, 1, 32, 32))
    torch.manual_seed(0)
    expected = procedure.sample({"label": label})
    torch.manual_seed(0)
    assert torch.allclose(loaded.generate(label), expected, atol=1e-6)
