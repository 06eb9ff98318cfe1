import os

import pytest


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
