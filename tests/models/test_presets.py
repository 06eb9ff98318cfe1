"""`preset: auto` of SC-GAN and OASIS follows the dataset; explicit fields win; others keep defaults."""

from __future__ import annotations

import dataclasses

import pytest

from sislab.datasets.presets import preset_geometry
from sislab.models.methods.oasis import OasisConfig, VaOasisConfig
from sislab.models.methods.scgan import ScganConfig
from sislab.models.presets import dataset_name, preset_in_use, with_resolved_preset

CITYSCAPES = preset_geometry("cityscapes")


@pytest.mark.parametrize("config_type", [OasisConfig, VaOasisConfig])
def test_oasis_on_cityscapes_takes_the_official_dataset_defaults(config_type) -> None:
    auto = config_type()
    assert (auto.preset, auto.labelmix_weight, auto.ema_decay) == ("auto", 10.0, 0.9999)
    resolved = with_resolved_preset(auto, CITYSCAPES)
    assert (resolved.preset, resolved.labelmix_weight, resolved.ema_decay) == (
        "cityscapes",
        5.0,
        0.999,
    )


def test_scgan_on_cityscapes_and_celeba_takes_their_presets() -> None:
    city = with_resolved_preset(ScganConfig(), CITYSCAPES)
    assert city == ScganConfig(preset="cityscapes")
    assert city.num_norm_candidates == 4  # the defaults have 3
    celeba = with_resolved_preset(ScganConfig(), preset_geometry("celebamask-hq"))
    assert (celeba.preset, celeba.ngf, celeba.use_vae, celeba.discriminator) == (
        "celeba",
        48,
        True,
        "multiscale",
    )


def test_explicit_user_values_win_even_when_equal_to_the_defaults() -> None:
    oasis = with_resolved_preset(OasisConfig.model_validate({"labelmix_weight": 10.0}), CITYSCAPES)
    assert (oasis.preset, oasis.labelmix_weight, oasis.ema_decay) == ("cityscapes", 10.0, 0.999)
    scgan = with_resolved_preset(
        ScganConfig.model_validate({"num_norm_candidates": 3, "ngf": 8}), CITYSCAPES
    )
    assert (scgan.preset, scgan.num_norm_candidates, scgan.ngf) == ("cityscapes", 3, 8)
    named = OasisConfig(preset="ade20k")
    assert with_resolved_preset(named, CITYSCAPES) is named  # a named preset is the user's


def test_the_synthetic_dataset_keeps_the_defaults() -> None:
    synthetic = preset_geometry("synthetic")
    assert dataset_name(synthetic) == "synthetic"
    oasis = with_resolved_preset(OasisConfig(), synthetic)
    assert oasis == OasisConfig(preset=None)
    assert (oasis.labelmix_weight, oasis.ema_decay) == (10.0, 0.9999)
    assert with_resolved_preset(ScganConfig(), synthetic) == ScganConfig(preset=None)
    # A synthetic layout with Cityscapes' class count is still synthetic.
    assert preset_in_use(OasisConfig(), dataclasses.replace(synthetic, num_classes=35)) is None


def test_an_unnamed_dataset_is_matched_by_its_class_count() -> None:
    renamed = dataclasses.replace(CITYSCAPES, name="my-city-crops")
    assert preset_in_use(OasisConfig(), renamed) == "cityscapes"
    assert preset_in_use(ScganConfig(), dataclasses.replace(renamed, num_classes=183)) == "coco"
    assert preset_in_use(ScganConfig(), dataclasses.replace(renamed, num_classes=12)) is None


def test_a_resolved_config_survives_dump_and_validation() -> None:
    resolved = with_resolved_preset(OasisConfig.model_validate({"ngf": 16}), CITYSCAPES)
    again = OasisConfig.model_validate(resolved.model_dump())
    assert again == resolved
    assert with_resolved_preset(again, CITYSCAPES) is again
