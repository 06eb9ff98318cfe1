"""GroupDNet, its Table 1 baselines, Table 3 ablations and schedule families train 2 iterations."""

from __future__ import annotations

import pytest
import torch

from sislab.search_spaces.schedules import constant_then_one, halve_every
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build

# Tiny: 4 classes at 64x64 ('normal': 2x2 latent grid), thin widths, the small-hidden CG-Norm MLP.
TINY = {
    "ngf": 4,
    "encoder_ndf": 4,
    "ndf": 4,
    "num_d": 1,
    "n_layers_d": 2,
    "num_upsampling_layers": "normal",
    "cg_mlp_style": "cityscapes",
}
GROUPDNET = {**TINY, "decoder_groups": [4, 4, 2, 2, 1, 1, 1]}

CASES = {
    "groupdnet": GROUPDNET,
    "mulnet": {**TINY, "variant": "mulnet"},
    "groupnet": {**TINY, "variant": "groupnet"},
    "groupenc": {**TINY, "variant": "groupenc"},
    "groupdec": {**TINY, "variant": "groupdec"},
    "vspade": {**TINY, "variant": "vspade"},
    "wo_map": {**GROUPDNET, "use_latent_map": False},
    "wo_split": {**GROUPDNET, "use_split": False},
    "group_norm": {**GROUPDNET, "norm": "group"},
    "wo_sync_bn": {**GROUPDNET, "use_sync_bn": False},
    "wo_spec_norm": {**GROUPDNET, "spectral_norm_g": False},
    "halve_every_1": {**TINY, "decoder_groups": halve_every(1, 4, 7)},
    "constant_then_one_3": {**TINY, "decoder_groups": constant_then_one(3, 4, 7)},
}


def _spec(model: dict):
    return spec_from_dict(
        {
            "name": "gdn",
            "method": "groupdnet",
            "dataset": {"uri": "synthetic://shapes?size=64&classes=4&num=4&val=2",
                        "image_size": [64, 64]},
            "model": model,
            "train": {"epochs": 1, "lr_decay_epochs": 1, "batch_size": 2,
                      "max_iters_per_epoch": 2},
            "resources": {"num_workers": 1},
        }
    )  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_trains_two_iterations(name: str) -> None:
    spec = _spec(CASES[name])
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, torch.device("cpu"), 1, lambda m: m)
    before = {k: v.clone() for k, v in procedure.generator.state_dict().items()}
    for batch in build.synthetic_source(spec, 0, 1).batches(0):
        losses = procedure.train_step(batch)
        assert all(torch.isfinite(v) for v in losses.values())
        assert "g_kl" in losses  # the KL term of the group encoder
    after = procedure.generator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    sample = procedure.sample(build.synthetic_source(spec, 0, 1).grid_batch(2))
    assert sample.shape == (2, 3, 64, 64)
