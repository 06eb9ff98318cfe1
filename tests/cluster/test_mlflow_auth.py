"""``sislab mlflow serve --auth``: the admin password comes from a file or the environment, and
neither the command line nor the config file sislab writes holds it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sislab.cluster.mlflow_auth import (
    ADMIN_PASSWORD_ENV,
    CONFIG_PATH_ENV,
    auth_environ,
    read_admin_password,
    write_auth_config,
)
from sislab.cluster.mlflow_server import serve_command
from sislab.errors import ClusterError

PASSWORD = "correct-horse-battery"


def test_password_from_file_first_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "admin.txt"
    file.write_text(PASSWORD + "\n")
    assert read_admin_password(file, {ADMIN_PASSWORD_ENV: "other"}) == PASSWORD
    assert read_admin_password(None, {ADMIN_PASSWORD_ENV: PASSWORD}) == PASSWORD


def test_missing_password_names_both_sources(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"MLFLOW_AUTH_ADMIN_PASSWORD gives none") as err:
        read_admin_password(None, {})
    assert "--admin-password-file" in str(err.value)
    (tmp_path / "empty").write_text("")
    with pytest.raises(ClusterError, match=r"--admin-password-file .*empty gives none"):
        read_admin_password(tmp_path / "empty", {})
    with pytest.raises(ClusterError, match=r"--admin-password-file .*absent"):
        read_admin_password(tmp_path / "absent", {})


def test_auth_config_is_private_and_holds_no_password(tmp_path: Path) -> None:
    config = write_auth_config(tmp_path / "auth")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    text = config.read_text()
    assert f"sqlite:///{tmp_path / 'auth' / 'basic_auth.db'}" in text
    assert "admin_password" not in text
    env = auth_environ({"HOME": "/h"}, config, PASSWORD)
    assert env[ADMIN_PASSWORD_ENV] == PASSWORD and env[CONFIG_PATH_ENV] == str(config)
    # The Flask key is kept, so that a restarted server (or its other workers) shares it.
    key = env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    write_auth_config(tmp_path / "auth")
    assert auth_environ({}, config, PASSWORD)["MLFLOW_FLASK_SERVER_SECRET_KEY"] == key
    command = serve_command("sqlite:////tmp/m.db", "s3://b/m", auth=True)
    assert command[-2:] == ["--app-name", "basic-auth"]
    assert PASSWORD not in " ".join(command)
