"""Session-wide fixtures: one local Ray cluster shared by every test that needs Ray."""

from __future__ import annotations

import os
import tempfile

import pytest

# Tiny models on 2 cores shared by several processes (Ray workers, subprocesses): one intra-op
# thread per process avoids oversubscription, which made CPU tests several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Tests never download: torch hub and the weights registry resolve into empty folders.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="sislab-test-torch-home-")
os.environ["SISLAB_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="sislab-test-weights-")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole test session (2 CPUs, no dashboard)."""
    import ray

    # Fake S3 credentials for the moto tests, set before Ray starts so that its worker processes
    # inherit them (pyarrow's S3FileSystem reads the standard AWS environment chain).
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Also for a torch imported before this file set OMP_NUM_THREADS."""
    import torch

    torch.set_num_threads(1)
