"""MLflow's basic-auth app for ``sislab mlflow serve --auth``: its config file and admin password.

MLflow creates the admin user from its auth config the first time the auth app starts on an empty
user store. sislab writes that config (mode 0600, the user database next to it) without the
password, which reaches the server only through its environment (``MLFLOW_AUTH_ADMIN_PASSWORD``):
never on a command line (``ps``), in a file sislab writes, or in a log.
"""

from __future__ import annotations

import configparser
import io
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from sislab.errors import ClusterError

AUTH_APP = "basic-auth"  # `mlflow server --app-name`
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"  # read by MLflow's auth config, over the file
CONFIG_PATH_ENV = "MLFLOW_AUTH_CONFIG_PATH"  # where MLflow's auth app reads its config
CONFIG_NAME = "basic_auth.ini"
# The auth app's forms carry CSRF tokens signed with this key; every worker of the server, and
# the server after a restart, must share it, so it is kept (0600) next to the config.
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
SECRET_KEY_NAME = "flask_secret_key"
ADMIN_USERNAME = "admin"
# Any signed-in user may read every experiment; writing needs a grant from the admin (MLflow's
# own default for the basic-auth app).
DEFAULT_PERMISSION = "READ"


def read_admin_password(password_file: Path | None, environ: Mapping[str, str]) -> str:
    """The admin password: the first line of ``password_file``, else ``MLFLOW_AUTH_ADMIN_PASSWORD``.

    Raises:
        ClusterError: Neither gives a non-empty password, or the file can't be read.
    """
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as err:
            raise ClusterError(
                f"--admin-password-file {password_file}: {err.strerror}",
                fix="give a readable file whose first line is the password (chmod 600)",
            ) from err
        password = lines[0].strip() if lines else ""
        where = f"--admin-password-file {password_file}"
    else:
        password = environ.get(ADMIN_PASSWORD_ENV, "")
        where = ADMIN_PASSWORD_ENV
    if not password:
        raise ClusterError(
            f"--auth needs the admin password and {where} gives none",
            fix=f"pass --admin-password-file FILE (first line: the password) or export "
            f"{ADMIN_PASSWORD_ENV}; never put it on the command line",
        )
    return password


def _write_private(path: Path, text: str) -> None:
    # Created 0600 (not chmod after writing): no moment where another user may read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def write_auth_config(auth_dir: Path) -> Path:
    """Write the auth app's config into ``auth_dir`` (0700) as a 0600 file; returns its path.

    The user database (``basic_auth.db``) and the Flask secret key live in the same folder. The
    file holds no password.
    """
    auth_dir = auth_dir.expanduser().resolve()
    auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": DEFAULT_PERMISSION,
        "database_uri": f"sqlite:///{auth_dir / 'basic_auth.db'}",
        "admin_username": ADMIN_USERNAME,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    path = auth_dir / CONFIG_NAME
    text = io.StringIO()
    config.write(text)
    _write_private(path, text.getvalue())
    if not (auth_dir / SECRET_KEY_NAME).exists():
        _write_private(auth_dir / SECRET_KEY_NAME, secrets.token_hex(32))
    return path


def auth_environ(
    environ: Mapping[str, str], config_path: Path, admin_password: str
) -> dict[str, str]:
    """The server's environment: ``environ`` plus the auth config, admin password and Flask key.

    A ``MLFLOW_FLASK_SERVER_SECRET_KEY`` already in ``environ`` wins over the kept one.
    """
    key = (config_path.parent / SECRET_KEY_NAME).read_text()
    return {
        SECRET_KEY_ENV: key,
        **environ,
        CONFIG_PATH_ENV: str(config_path),
        ADMIN_PASSWORD_ENV: admin_password,
    }
