"""The Jobs API of a Ray head with token authentication (Ray 2.60, ``RAY_AUTH_MODE=token``):
``sislab submit`` and ``sislab jobs`` send the token from the flag, ``$RAY_AUTH_TOKEN``,
``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, fail with one line naming the sources tried
and the fix when it is missing or wrong, and never print or forward it.

One head-only ``ray start --head`` on loopback, in its own process group, stopped here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from sislab.cli.main import main
from sislab.cluster import jobs
from sislab.cluster.ray_token import RayToken, find_token
from sislab.errors import ClusterError

from .two_node_lab import BIN, _pids_mentioning, dashboard_available, free_port, wait_until

TOKEN = secrets.token_hex(32)


def _authorized(url: str) -> bool:
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return requests.get(f"{url}/api/jobs/", headers=headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory):
    """The dashboard URL of a token-auth head; its token is ``TOKEN``."""
    if not dashboard_available():
        pytest.skip("the Jobs API needs ray[default] (the dashboard)")
    base = tmp_path_factory.mktemp("token-head")
    token_file = base / "head_token"
    token_file.write_text(TOKEN)
    temp_dir = Path(tempfile.mkdtemp(prefix="sltok-", dir="/tmp"))  # short: Ray's socket paths
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_file),
        "HOME": str(base),  # Ray writes no ~/.ray/auth_token of its own into the real home
        "RAY_TMPDIR": str(temp_dir),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_AUTH_TOKEN", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (base / "ray-head.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", f"--port={free_port()}", "--num-cpus=1",
             "--node-ip-address=127.0.0.1", "--block", f"--temp-dir={temp_dir}",
             "--disable-usage-stats", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={port}", f"--dashboard-agent-listen-port={free_port()}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: _authorized(url), "token-auth Jobs API", [proc])
        yield url, temp_dir
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for pid in _pids_mentioning(str(temp_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def no_token_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell with no token: neither variable set, an empty home."""
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _sislab(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    return code, out.out, out.err


def test_find_token_sources_in_order(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("from-flag\n")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    path_file = tmp_path / "path"
    path_file.write_text("from-path")
    env = {"RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(path_file)}
    assert find_token(flag, env, tmp_path).value == "from-flag"
    assert find_token(None, env, tmp_path).source == "$RAY_AUTH_TOKEN"
    assert find_token(None, {"RAY_AUTH_TOKEN_PATH": str(path_file)}, tmp_path).value == "from-path"
    assert find_token(None, {}, tmp_path).value == "from-home"
    assert find_token(None, {}, tmp_path / "nowhere") == RayToken(None, "none")
    assert "from-env" not in repr(find_token(None, env, tmp_path))
    with pytest.raises(ClusterError, match=r"Ray token file .*missing \(from --ray-token-file\)"):
        find_token(tmp_path / "missing", env, tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ClusterError, match="is empty"):
        find_token(tmp_path / "empty", env, tmp_path)


def test_missing_token_is_one_line_naming_the_sources(
    head, no_token_anywhere: Path, capsys: pytest.CaptureFixture
) -> None:
    url, _ = head
    code, _, err = _sislab(["jobs", "list", "--address", url], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    first = next(line for line in lines if line.startswith("error: "))
    fix = lines[lines.index(first) + 1]
    assert first == (
        f"error: the Ray Jobs API at {url} requires a token (token authentication is on) and none "
        "was found (tried --ray-token-file, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, "
        "~/.ray/auth_token)"
    )
    assert "ray get-auth-token" in fix and "export RAY_AUTH_TOKEN=" in fix
    spec = no_token_anywhere / "spec.yaml"
    spec.write_text("name: x\nmethod: spade\n")
    code, _, err = _sislab(["submit", str(spec), "--address", url], capsys)
    assert code == 2 and "requires a token" in err  # before the spec's checks and any upload


def test_wrong_token_is_refused_naming_its_source(
    head, no_token_anywhere: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    url, _ = head
    wrong = secrets.token_hex(32)
    monkeypatch.setenv("RAY_AUTH_TOKEN", wrong)
    code, _, err = _sislab(["jobs", "stop", "raysubmit_x", "--address", url], capsys)
    assert code == 2
    assert "refused the token from $RAY_AUTH_TOKEN: it is not the cluster's token" in err
    assert wrong not in err


def test_token_file_submits_lists_and_reads_logs_without_leaking_it(
    head, no_token_anywhere: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    url, temp_dir = head
    monkeypatch.setenv("COLUMNS", "250")  # the jobs table's ids unwrapped
    token_file = no_token_anywhere / "token"
    token_file.write_text(TOKEN + "\n")
    token = find_token(token_file, {}, no_token_anywhere)
    work = no_token_anywhere / "work"
    work.mkdir()
    (work / "README").write_text("the job's working dir")
    submission = jobs.Submission(
        entrypoint=f"{sys.executable} -c \"print('hello from the job')\"",
        working_dir=work,
        spec_relpath="-",
    )
    job_id = jobs.submit(url, submission, "sislab-token-test", token)
    assert jobs.wait_for_job(url, job_id, timeout_s=120, token=token) == "SUCCEEDED"
    flag = ["--address", url, "--ray-token-file", str(token_file)]
    code, out, _ = _sislab(["jobs", "list", *flag], capsys)
    assert code == 0 and "sislab-token-test" in out
    code, out, _ = _sislab(["jobs", "logs", job_id, *flag], capsys)
    assert code == 0 and "hello from the job" in out
    # Nothing the cluster stores or logs about the job holds the token.
    info = jobs.list_jobs(url, token)[-1]
    assert TOKEN not in repr(info)
    logs = [p for p in temp_dir.rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".err")]
    assert logs and not [p for p in logs if TOKEN.encode() in p.read_bytes()]
