"""What a trial trains and logs: its spec, presets resolved."""

from __future__ import annotations

from sislab.orchestrator.trial import trial_spec_of
from sislab.search_spaces.trial_spec import switch_method
from sislab.spec.spec import Spec

SYNTHETIC_64 = {"uri": "synthetic://shapes?size=64&classes=8&num=16", "image_size": [64, 64]}


def test_a_trial_switched_to_groupdnet_records_the_resolved_preset() -> None:
    base = Spec.model_validate({"name": "s", "dataset": SYNTHETIC_64, "model": {"ngf": 8}})
    data = switch_method(base.model_dump(mode="json"), "groupdnet")
    spec = trial_spec_of(data, {"train.lr_g": 1e-4})
    assert spec.model.preset == "deepfashion"  # 8 classes; never `auto` in the logged spec
    assert spec.model.ngf == 8 and spec.train.lr_g == 1e-4
    logged = spec.model_dump(mode="json")["model"]
    assert logged["preset"] == "deepfashion"


def test_a_trial_switched_to_oasis_keeps_the_defaults_on_synthetic_data() -> None:
    base = Spec.model_validate({"name": "s", "dataset": SYNTHETIC_64})
    spec = trial_spec_of(switch_method(base.model_dump(mode="json"), "oasis"), {})
    assert (spec.model.preset, spec.model.labelmix_weight) == (None, 10.0)
