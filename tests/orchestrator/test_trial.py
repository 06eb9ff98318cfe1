"""A trial's process-group backend: NCCL for whole GPUs, gloo where ranks may share a device."""

from __future__ import annotations

import pytest

from sislab.orchestrator.trial import ddp_backend
from sislab.spec.loader import spec_from_dict


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
