"""A method switch never carries a preset (or the values it filled in) to another method."""

from __future__ import annotations

from sislab.datasets.presets import preset_geometry
from sislab.models.presets import with_resolved_preset
from sislab.search_spaces.trial_spec import switch_method, trial_spec
from sislab.spec.spec import Spec


def _resolved(data: dict, dataset: str) -> Spec:
    spec = Spec.model_validate(data)
    model = with_resolved_preset(spec.model, preset_geometry(dataset))
    return spec.model_copy(update={"model": model})


def test_a_preset_and_its_values_stay_with_their_method() -> None:
    base = _resolved({"name": "s", "method": "scgan", "model": {"ngf": 8}}, "celebamask-hq")
    assert (base.model.preset, base.model.use_vae, base.model.ndf) == ("celeba", True, 64)
    moved = switch_method(base.model_dump(mode="json"), "spade")["model"]
    # ngf is the user's; use_vae came from the celeba preset, preset names an SC-GAN config.
    assert moved == {"ngf": 8, "method": "spade"}


def test_a_switched_method_resolves_its_own_preset_before_the_overrides() -> None:
    base = _resolved({"name": "s", "method": "scgan"}, "cityscapes")
    city = preset_geometry("cityscapes")
    oasis = trial_spec(base, {"method": "oasis"}, city).model
    assert (oasis.preset, oasis.labelmix_weight, oasis.ema_decay) == ("cityscapes", 5.0, 0.999)
    overridden = trial_spec(base, {"method": "oasis", "model.labelmix_weight": 2.0}, city).model
    assert (overridden.labelmix_weight, overridden.ema_decay) == (2.0, 0.999)
