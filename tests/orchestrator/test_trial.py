"""A trial: its process-group backend (NCCL for whole GPUs, gloo where ranks may share a device)
and what it trains and logs (its spec, presets resolved)."""

from __future__ import annotations

import pytest

from sislab.orchestrator.trial import ddp_backend, trial_spec_of
from sislab.search_spaces.trial_spec import switch_method
from sislab.spec.loader import spec_from_dict
from sislab.spec.spec import Spec


def _spec(resources: dict):
    return spec_from_dict(
        {
            "name": "backend",
            "method": "spade",
            "dataset": {
                "uri": "synthetic://shapes?size=64&classes=4&num=4",
                "image_size": [64, 64],
            },
            "resources": resources,
        }
    )


@pytest.mark.parametrize(
    ("resources", "backend"),
    [
        ({"num_workers": 2}, "gloo"),
        ({"num_workers": 2, "use_gpu": True}, "nccl"),
        ({"num_workers": 2, "use_gpu": True, "gpus_per_worker": 2}, "nccl"),
        # Half a GPU each: both ranks may get the same device, which NCCL refuses.
        ({"num_workers": 2, "use_gpu": True, "gpus_per_worker": 0.5}, "gloo"),
    ],
)
def test_backend_follows_the_gpu_share(resources: dict, backend: str) -> None:
    assert ddp_backend(_spec(resources)) == backend


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


@pytest.mark.parametrize("with_datasets", [False, True])
def test_no_cleaner_actor_and_ray_data_only_with_datasets(with_datasets: bool) -> None:
    import ray
    from ray.train import ScalingConfig
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import (
        PlacementGroupCleanerCallback,
    )

    from sislab.orchestrator.trial import TrialTrainer

    # A dataset factory (Ray calls it only when the run starts): no Ray Data, no Ray needed.
    datasets = {"train": lambda: None} if with_datasets else None
    trainer = TrialTrainer(
        lambda: None, scaling_config=ScalingConfig(num_workers=1), datasets=datasets
    )
    kinds = [type(cb) for cb in trainer._create_default_callbacks()]
    assert (DatasetsCallback in kinds) == with_datasets
    # The sweep's driver frees orphaned groups (tests/orchestrator/test_placement_groups.py).
    assert PlacementGroupCleanerCallback not in kinds
    assert not ray.is_initialized()
