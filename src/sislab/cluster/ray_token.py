"""The token of a Ray cluster with token authentication (``RAY_AUTH_MODE=token``), for the Jobs API.

Ray 2.60's dashboard answers a request without a token with 401 and one with a wrong token with 403
(``ray._private.authentication.http_token_authentication``). sislab looks for the token where Ray's
own clients do, plus a flag, and sends it as ``Authorization: Bearer`` on every Jobs API request; it
never prints, logs or forwards it (the job's runtime environment refuses ``*_TOKEN`` names, see
``cluster.jobs``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sislab.errors import ClusterError

TOKEN_ENV = "RAY_AUTH_TOKEN"  # Ray's variable holding the token itself
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"  # Ray's variable naming a token file
FLAG = "--ray-token-file"
DEFAULT_TOKEN_FILE = Path(".ray") / "auth_token"  # under $HOME: where `ray start` writes it
SOURCES_TRIED = f"{FLAG}, ${TOKEN_ENV}, ${TOKEN_PATH_ENV}, ~/{DEFAULT_TOKEN_FILE}"
HOW_TO_GET = (
    "print the head's token with `ray get-auth-token` on the head node, then export "
    f"{TOKEN_ENV}=... or pass {FLAG} PATH (a file holding only the token)"
)


@dataclass(frozen=True)
class RayToken:
    """A token and where it was read from (the token itself is never part of its repr).

    Attributes:
        value: The token, or None when no source had one.
        source: Where it came from (``$RAY_AUTH_TOKEN``, ``--ray-token-file /path``, ...).
    """

    value: str | None = field(repr=False)
    source: str

    def headers(self) -> dict[str, str]:
        """HTTP headers of a Jobs API request (none without a token)."""
        return {"Authorization": f"Bearer {self.value}"} if self.value else {}


def _read(path: Path, source: str) -> RayToken:
    try:
        value = path.expanduser().read_text().strip()
    except OSError as err:
        raise ClusterError(
            f"Ray token file {path} (from {source}) cannot be read: {err.strerror}",
            fix=HOW_TO_GET,
        ) from None
    if not value:
        raise ClusterError(f"Ray token file {path} (from {source}) is empty", fix=HOW_TO_GET)
    return RayToken(value, f"{source} {path}")


def find_token(token_file: Path | None, environ: Mapping[str, str], home: Path) -> RayToken:
    """The token from, in order: ``token_file`` (the flag), ``$RAY_AUTH_TOKEN``,
    ``$RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``; ``value`` None when none has one.

    Args:
        token_file: The ``--ray-token-file`` flag's path, if given.
        environ: The environment (``os.environ``).
        home: The home folder (``Path.home()``).

    Raises:
        ClusterError: A named token file that is missing, unreadable or empty.
    """
    if token_file is not None:
        return _read(token_file, FLAG)
    if environ.get(TOKEN_ENV, "").strip():
        return RayToken(environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
    if environ.get(TOKEN_PATH_ENV):
        return _read(Path(environ[TOKEN_PATH_ENV]), f"${TOKEN_PATH_ENV}")
    default = home / DEFAULT_TOKEN_FILE
    if default.is_file():
        return _read(default, "the default file")
    return RayToken(None, "none")


@contextlib.contextmanager
def authentication_errors(address: str, token: RayToken) -> Iterator[None]:
    """Turn Ray's ``AuthenticationError`` (401: no token, 403: wrong token) into one line
    saying which sources were tried and the fix; the token is never part of it."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as err:
        refused = str(err).startswith("Authentication failed") or token.value is not None
        if refused:
            message = (
                f"the Ray Jobs API at {address} refused the token from {token.source}: it is "
                "not the cluster's token"
            )
        else:
            message = (
                f"the Ray Jobs API at {address} requires a token (token authentication is on) "
                f"and none was found (tried {SOURCES_TRIED})"
            )
        raise ClusterError(message, fix=HOW_TO_GET) from None
