"""SC-GAN's procedure: every ablation configuration of the paper trains, L_s and FPSE FM weights."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sislab.errors import WeightsError
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.perceptual import vgg19_features
from sislab.models.methods.scgan import ScganConfig
from sislab.models.registry import get_method
from sislab.spec.loader import spec_from_dict
from sislab.spec.models import LossesSpec, TrainSpec
from sislab.trainers import build
from sislab.trainers.procedures.base import ProcedureRuntime
from sislab.trainers.procedures.scgan import ScganProcedure

# One tiny geometry for all: 64x64 is the smallest size FPSE's 1/32 level (2x2) can normalise.
GEOMETRY = DatasetGeometry(4, False, 64, 64)
TINY = {"ngf": 2, "nff": 2, "nrf": 2, "ndf": 4}

# Paper Tables 3 (ops), 5 (n with 4 norm candidates), 6 (g) and 4 (L_s); the defaults are SC-GAN's.
CONFIGS: dict[str, dict[str, Any]] = {
    **{f"tab3-{ops}": {"ops": ops} for ops in ("conv_bn", "conv_scn", "scc_bn", "scc_scn")},
    **{f"tab5-n{n}": {"num_candidates": n, "num_norm_candidates": 4} for n in (1, 2, 4, 8)},
    **{f"tab6-{g}": {"nonlinearity": g} for g in ("sigmoid", "tanh", "relu", "none")},
    **{f"ls-{loss}": {"svg_loss": loss} for loss in ("l1", "l2", "vgg", "none")},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convs gain nothing from threads, and on a shared CPU they cost 10-50x in contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_vgg_state() -> dict[str, torch.Tensor]:
    return {f"features.{k}": v for k, v in vgg19_features().state_dict().items()}


def _procedure(options: dict[str, Any], vgg: bool = False) -> ScganProcedure:
    torch.manual_seed(0)
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, _random_vgg_state() if vgg
                               else None)  # fmt: skip
    return ScganProcedure(
        get_method("scgan"),
        ScganConfig(**TINY, **options),
        GEOMETRY,
        TrainSpec(batch_size=1),
        LossesSpec(perceptual=0),  # the VGG19 perceptual term is SPADE's, tested there
        runtime,
    )


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    cells = torch.randint(0, GEOMETRY.num_classes, (1, 1, 8, 8), generator=generator)
    label = torch.nn.functional.interpolate(cells.float(), size=(64, 64)).long()
    return {"label": label, "image": torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1}


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_ablation_configuration_trains_two_iterations(options: dict[str, Any]) -> None:
    procedure = _procedure(options, vgg=options.get("svg_loss") == "vgg")
    before = {k: v.clone() for k, v in procedure.generator.state_dict().items()}
    batch = _batch()
    for _ in range(2):
        losses = procedure.train_step(batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
    after = procedure.generator.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("srg.") for k in changed) and any(k.startswith("svg.") for k in changed)
    # L_s is a term iff it is on; off, the SVG's RGB head is frozen (the code's zero gradient).
    assert ("g_svg" in losses) == (options.get("svg_loss", "l1") != "none")
    to_rgb = {k for k in before if k.startswith("svg.to_rgb.")}
    assert to_rgb and (to_rgb.isdisjoint(changed) == (options.get("svg_loss") == "none"))
    assert procedure.sample(batch).shape == (1, 3, 64, 64)


def test_svg_loss_is_the_weighted_distance_of_the_svg_image() -> None:
    procedure = _procedure({"svg_loss": "l2", "svg_loss_weight": 3.0})
    real = torch.rand(1, 3, 64, 64)
    svg_image = torch.zeros(1, 3, 64, 64)
    terms = procedure._extra_generator_terms(real, {"svg_image": svg_image})
    assert terms["g_svg"].item() == pytest.approx(3.0 * real.pow(2).mean().item(), rel=1e-5)


def test_fpse_feature_matching_weights_each_of_its_four_features_by_a_quarter() -> None:
    procedure = _procedure({})
    ones, zeros, logit = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 2, 2)
    fake = [[ones, logit], [ones, logit], [ones, 3 * ones, logit]]
    real = [[zeros, logit], [zeros, logit], [zeros, zeros, logit]]
    # Code: sum over the 4 features of L1 / 4 = (1 + 1 + 1 + 3) / 4.
    assert procedure._feature_matching(fake, real).item() == pytest.approx(1.5)
    multiscale = _procedure({"discriminator": "multiscale", "num_d": 2})
    # SPADE's multi-scale D: / num_D, unchanged.
    fake2, real2 = [[ones, logit], [3 * ones, logit]], [[zeros, logit], [zeros, logit]]
    assert multiscale._feature_matching(fake2, real2).item() == pytest.approx(2.0)


def test_vgg_svg_loss_needs_vgg19_weights() -> None:
    assert ScganProcedure.needs_vgg19(ScganConfig(svg_loss="vgg"), LossesSpec(perceptual=0))
    assert not ScganProcedure.needs_vgg19(ScganConfig(), LossesSpec(perceptual=0))
    with pytest.raises(WeightsError, match="svg_loss is 'vgg'"):
        _procedure({"svg_loss": "vgg"}, vgg=False)


def test_spec_with_a_preset_builds_the_scgan_procedure() -> None:
    spec = spec_from_dict(
        {
            "name": "scgan-preset",
            "method": "scgan",
            "dataset": {
                "uri": "synthetic://shapes?size=64&classes=4&num=2",
                "image_size": [64, 64],
            },
            "model": {"preset": "ade20k", "num_candidates": 2, **TINY},
            "losses": {"perceptual": 0},
        }
    )
    assert (spec.model.num_candidates, spec.model.num_norm_candidates) == (2, 4)
    geometry = build.dataset_geometry(spec)
    procedure, notes = build.build_procedure(spec, geometry, torch.device("cpu"), 1, lambda m: m)
    assert isinstance(procedure, ScganProcedure)
    assert notes["sislab.svg_loss"] == "l1 x 2"
