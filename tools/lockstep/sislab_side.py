"""sislab's side: the method's training procedure built from a spec, as a trial builds it.

The spec is written from the method map's ``sislab_spec()`` (every knob that must match the
official options spelled out) and validated by sislab's own loader. The dataset geometry is given
directly (label channels, instance edges, size), since the batches come from the harness.
"""

from __future__ import annotations

import os
import tempfile

import torch
import yaml


def build_procedure(spec: dict, geometry):
    """The procedure of ``spec`` (a spec mapping) for ``geometry``, on the CPU."""
    from sislab.models.registry import get_method
    from sislab.spec.loader import load_spec
    from sislab.trainers.build import PROCEDURES
    from sislab.trainers.procedures.base import ProcedureRuntime

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(spec, f, sort_keys=False)
        path = f.name
    try:
        loaded = load_spec(path)
    finally:
        os.unlink(path)
    method = get_method(loaded.method)
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, None)
    procedure = PROCEDURES[method.procedure](
        method, loaded.model, geometry, loaded.train, loaded.losses, runtime
    )
    return procedure, loaded


def base_spec(method: str, classes: int, height: int, width: int, batch: int) -> dict:
    """The spec skeleton shared by every method map (data is synthetic; never read here)."""
    return {
        "name": f"lockstep-{method}",
        "method": method,
        "dataset": {
            "uri": f"synthetic://shapes?size={max(height, width)}&classes={classes}&num=8&val=4",
            "image_size": [height, width],
            "flip": False,
        },
        "train": {
            "epochs": 1,
            "lr_decay_epochs": 0,
            "batch_size": batch,
            "precision": "fp32",
            "sync_bn": False,
        },
        "eval": {"metrics": []},
        "resources": {"num_workers": 1, "use_gpu": False},
    }
