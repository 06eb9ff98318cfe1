"""Which spec fields are params, with which value; infrastructure stays out."""

from __future__ import annotations

from sislab.spec.loader import spec_from_dict
from sislab.trainers.run_params import is_infrastructure, shared_params, split_params

SPEC = {"name": "p", "method": "spade", "storage": {"region": "eu-west-1"}}
NO_VGG = {"sislab.perceptual_loss": "off: no vgg19 weights (set weights.paths.vgg19)"}


def _data(extra: dict | None = None) -> dict:
    return spec_from_dict({**SPEC, **(extra or {})}).model_dump(mode="json")


def test_params_hold_effective_values_and_say_why() -> None:
    params, infrastructure, changed = split_params(_data(), NO_VGG)
    assert params["losses.perceptual"] == 0  # configured 10.0, but off
    assert params["losses.kl"] == 0  # model.use_vae is false
    assert params["resources.gpus_per_worker"] == 0  # use_gpu is false
    assert params["losses.feat_match"] == 10.0 and params["train.lr_g"] == 1e-4
    assert "no vgg19 weights" in changed["losses.perceptual"]
    assert "use_gpu" in changed["resources.gpus_per_worker"]
    assert infrastructure["storage.region"] == "eu-west-1"


def test_a_loss_that_is_on_keeps_its_weight() -> None:
    data = _data({"model": {"use_vae": True}, "resources": {"use_gpu": True}})
    params, _, changed = split_params(data, {"sislab.perceptual_loss": "on (vgg19)"})
    assert params["losses.perceptual"] == 10.0 and params["losses.kl"] == 0.05
    assert params["resources.gpus_per_worker"] == 1.0
    assert changed == {}


def test_no_infrastructure_field_is_a_param() -> None:
    params, infrastructure, _ = split_params(_data())
    assert not [k for k in params if is_infrastructure(k)]
    for key in ("name", "dataset.read_retries", "weights.sha256", "tracking.uri", "search.space"):
        assert key in infrastructure and key not in params
    assert "model.method" not in params and params["method"] == "spade"
    assert len(params) <= 60  # was 89 with everything; 60 since train.unfolded_convs


def test_parent_params_leave_out_what_the_sweep_varies() -> None:
    shared = shared_params(_data(), {"train.lr_g"})
    assert "train.lr_g" not in shared and shared["train.lr_d"] == 4e-4
    by_method = shared_params(_data(), {"method"})
    assert not [k for k in by_method if k == "method" or k.startswith("model.")]
