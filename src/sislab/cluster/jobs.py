"""Remote submission through Ray's Jobs API: the runtime environment, the entrypoint, and the job
list, logs and stop calls.

Secrets never travel in a runtime environment: Ray stores it in the job's metadata, shows it on the
dashboard and prints it in ``ray job list``. Environment variables are therefore passed by name, and
names that look like credentials (``AWS_SECRET_ACCESS_KEY``, ``*_TOKEN``, ...) are refused; S3 and
MLflow credentials must come from the cluster's own environment (a Kubernetes Secret, an instance
profile, the nodes' ``~/.aws``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sislab.cluster.ray_token import RayToken, authentication_errors
from sislab.errors import ClusterError

logger = logging.getLogger(__name__)

# Names whose values are credentials by convention (AWS, MLflow, Hugging Face, generic).
SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|SESSION|(^|_)KEY($|_)|ACCESS_KEY",
    re.IGNORECASE,
)
JOB_SPEC_NAME = "spec.yaml"  # the spec's name inside a staged working_dir
POLL_INTERVAL_S = 2.0  # Jobs API status polling; a job lasts minutes, not milliseconds


@dataclass(frozen=True)
class Submission:
    """What ``sislab submit`` sends: the entrypoint and the runtime environment.

    Attributes:
        entrypoint: Shell command the job runs on the head node.
        working_dir: Local folder uploaded as the job's working directory.
        spec_relpath: The spec's path inside ``working_dir``.
        pip: Extra pip requirements installed for the job.
        env_names: Names of the local environment variables passed on.
        env_values: Their values (sent to Ray, never printed).
        py_modules: Local packages shipped with the job (the local sislab with ``ship_sislab``).
    """

    entrypoint: str
    working_dir: Path
    spec_relpath: str
    pip: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    env_values: tuple[str, ...] = ()
    py_modules: tuple[str, ...] = ()

    def runtime_env(self) -> dict[str, Any]:
        """The runtime environment given to Ray (holds the values of ``env_names``)."""
        env: dict[str, Any] = {"working_dir": str(self.working_dir)}
        if self.pip:
            env["pip"] = list(self.pip)
        if self.env_names:
            env["env_vars"] = dict(zip(self.env_names, self.env_values, strict=True))
        if self.py_modules:
            env["py_modules"] = list(self.py_modules)
        return env

    def printable_runtime_env(self) -> dict[str, Any]:
        """The runtime environment with every variable's value replaced by where it came from."""
        env = self.runtime_env()
        if self.env_names:
            env["env_vars"] = {name: f"<local ${name}>" for name in self.env_names}
        return env


def check_env_names(names: Sequence[str]) -> None:
    """Refuse variable names that look like credentials.

    Raises:
        ClusterError: A name such as ``AWS_SECRET_ACCESS_KEY`` or ``MLFLOW_TRACKING_TOKEN``.
    """
    secret = [name for name in names if SECRET_NAME.search(name)]
    if secret:
        raise ClusterError(
            f"refusing to put {', '.join(secret)} into the job's runtime environment: Ray stores "
            "and displays it (dashboard, `ray job list`)",
            fix="give the cluster its credentials itself (a Kubernetes Secret via secretKeyRef, "
            "an instance profile, or the nodes' environment); see docs/cluster.md",
        )


JOB_RUNS_ROOT = "~/sislab-runs"
"""Run folders of submitted sweeps, on the head node. Not inside the job's working_dir: Ray unpacks
that into a package cache which it may replace or garbage-collect, taking the run folder with it."""


def entrypoint_for(spec_relpath: str, runs_root: str = JOB_RUNS_ROOT) -> str:
    """The job's command: ``sislab run`` on the cluster the job runs in (``--address auto``)."""
    # `python -m` rather than the `sislab` script: works with py_modules as well as an install.
    command = ["python", "-m", "sislab.cli.main", "run", spec_relpath, "--address", "auto", "--job"]
    # The runs root is left unquoted so that the head's shell expands `~`.
    return f"{shlex.join(command)} --runs-root {runs_root}"


def build_submission(
    spec_path: Path,
    staging_dir: Path,
    *,
    working_dir: Path | None = None,
    pip: Sequence[str] = (),
    env_names: Sequence[str] = (),
    environ: Mapping[str, str],
    ship_sislab: bool = False,
) -> Submission:
    """Assemble a submission; the spec is staged alone unless a project ``working_dir`` is given.

    Args:
        spec_path: The spec YAML.
        staging_dir: Empty folder that becomes the working dir when ``working_dir`` is None.
        working_dir: Project folder to upload; must contain the spec.
        pip: Extra pip requirements.
        env_names: Local environment variables to pass on, by name.
        environ: The local environment (``os.environ``).
        ship_sislab: Upload the local sislab package (``py_modules``) instead of relying on the
            cluster's installed one.

    Raises:
        ClusterError: A credential-like variable, a variable not set locally, or a spec outside
            the working dir.
    """
    check_env_names(env_names)
    missing = [name for name in env_names if name not in environ]
    if missing:
        raise ClusterError(
            f"--env {', '.join(missing)}: not set in this shell",
            fix="export it first or drop the --env",
        )
    spec_path = spec_path.resolve()
    if working_dir is None:
        shutil.copyfile(spec_path, staging_dir / JOB_SPEC_NAME)
        root, relpath = staging_dir, JOB_SPEC_NAME
    else:
        root = working_dir.resolve()
        if not spec_path.is_relative_to(root):
            raise ClusterError(
                f"the spec {spec_path} is outside the working dir {root}",
                fix="move the spec into the project folder or leave out --working-dir",
            )
        relpath = spec_path.relative_to(root).as_posix()
    modules: tuple[str, ...] = ()
    if ship_sislab:
        import sislab

        modules = (str(Path(sislab.__file__).parent),)
    return Submission(
        entrypoint=entrypoint_for(relpath),
        working_dir=root,
        spec_relpath=relpath,
        pip=tuple(pip),
        env_names=tuple(env_names),
        env_values=tuple(environ[name] for name in env_names),
        py_modules=modules,
    )


@contextlib.contextmanager
def staging_folder() -> Iterator[Path]:
    """A temporary folder that lives until the submission has been uploaded."""
    with tempfile.TemporaryDirectory(prefix="sislab-submit-") as folder:
        yield Path(folder)


NO_TOKEN = RayToken(None, "none")  # a cluster without token authentication


def _client(address: str, token: RayToken):
    """A Jobs API client sending ``token`` (Ray's AuthenticationError becomes a ClusterError in
    each call below, :func:`sislab.cluster.ray_token.authentication_errors`)."""
    from ray.job_submission import JobSubmissionClient

    try:
        with authentication_errors(address, token):
            return JobSubmissionClient(address, headers=token.headers())
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(
            f"cannot reach the Ray Jobs API at {address}: {err}",
            fix="pass the head's dashboard address, e.g. http://HEAD:8265 (kubectl port-forward "
            "svc/CLUSTER-head-svc 8265:8265 on Kubernetes)",
        ) from None


def submit(
    address: str,
    submission: Submission,
    submission_id: str | None = None,
    token: RayToken = NO_TOKEN,
) -> str:
    """Submit the job and return its id (``token``: the cluster's, see ``cluster.ray_token``)."""
    client = _client(address, token)
    with authentication_errors(address, token):
        job_id = client.submit_job(
            entrypoint=submission.entrypoint,
            runtime_env=submission.runtime_env(),
            submission_id=submission_id,
        )
    logger.info("submitted %s to %s", job_id, address)
    return job_id


def check_access(address: str, token: RayToken) -> None:
    """One authenticated request, so that a missing or wrong token fails before anything else.

    Raises:
        ClusterError: The Jobs API is unreachable or refuses the token.
    """
    list_jobs(address, token)


def list_jobs(address: str, token: RayToken = NO_TOKEN) -> list[Any]:
    """Every job the cluster knows, oldest first (Ray's ``JobDetails``)."""
    client = _client(address, token)
    with authentication_errors(address, token):
        jobs = client.list_jobs()
    return sorted(jobs, key=lambda job: job.start_time or 0)


def job_logs(address: str, job_id: str, token: RayToken = NO_TOKEN) -> str:
    """The job's driver output so far."""
    client = _client(address, token)
    with authentication_errors(address, token):
        return client.get_job_logs(job_id)


def follow_logs(address: str, job_id: str, token: RayToken = NO_TOKEN) -> Iterator[str]:
    """The job's driver output as it is written, until the job ends."""
    import asyncio

    client = _client(address, token)
    loop = asyncio.new_event_loop()
    stream = client.tail_job_logs(job_id)
    try:
        while True:
            try:
                with authentication_errors(address, token):
                    yield loop.run_until_complete(stream.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


def stop_job(address: str, job_id: str, token: RayToken = NO_TOKEN) -> bool:
    """Ask the cluster to stop the job; whether a running job was stopped."""
    client = _client(address, token)
    with authentication_errors(address, token):
        return client.stop_job(job_id)


def wait_for_job(address: str, job_id: str, timeout_s: float, token: RayToken = NO_TOKEN) -> str:
    """Poll until the job ends; its final status (SUCCEEDED, FAILED or STOPPED).

    Raises:
        ClusterError: The job still runs after ``timeout_s``.
    """
    client = _client(address, token)
    deadline = time.monotonic() + timeout_s
    while True:
        with authentication_errors(address, token):
            status = str(client.get_job_status(job_id).value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        if time.monotonic() > deadline:
            raise ClusterError(
                f"job {job_id} is still {status} after {timeout_s:.0f}s",
                fix=f"watch it with `sislab jobs logs {job_id} --address {address} --follow`",
            )
        time.sleep(POLL_INTERVAL_S)
