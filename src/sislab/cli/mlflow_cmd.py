"""``sislab mlflow serve``: the shared MLflow server of a cluster, artifacts proxied to S3."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``mlflow serve``."""
    parser = sub.add_parser("mlflow", help="the shared MLflow server of a cluster")
    actions = parser.add_subparsers(dest="mlflow_action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="start `mlflow server` with artifacts proxied to S3",
        description="Runs `mlflow server --serve-artifacts`: clients upload artifacts through "
        "the server, which alone needs S3 credentials (AWS chain) and endpoint "
        "(MLFLOW_S3_ENDPOINT_URL).",
    )  # fmt: skip
    serve.add_argument(
        "--backend-store-uri", required=True,
        help="runs, params, metrics: postgresql://USER@HOST/DB or sqlite:///path.db",
    )  # fmt: skip
    serve.add_argument(
        "--artifacts-destination", required=True, help="artifact store, e.g. s3://bucket/mlflow"
    )
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--allowed-hosts", default=None,
        help="Host headers to accept besides localhost/private IPs, e.g. mlflow.lab.svc:5000",
    )  # fmt: skip
    serve.add_argument(
        "--auth", action="store_true",
        help="run MLflow's basic-auth app: every request needs a user and password "
        "(clients: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)",
    )  # fmt: skip
    serve.add_argument(
        "--admin-password-file", type=Path, default=None,
        help="with --auth: file whose first line is the admin password (else the "
        "MLFLOW_AUTH_ADMIN_PASSWORD environment variable); used when the user store is new",
    )  # fmt: skip
    serve.add_argument(
        "--auth-dir", type=Path, default=Path("mlflow-auth"),
        help="with --auth: folder of the auth config (0600) and the user database",
    )  # fmt: skip
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from sislab.cluster.mlflow_server import endpoint_note, serve_command

    command = serve_command(
        args.backend_store_uri, args.artifacts_destination, args.host, args.port, args.workers,
        args.allowed_hosts, auth=args.auth,
    )  # fmt: skip
    environ = dict(os.environ)
    if args.auth:
        from sislab.cluster.mlflow_auth import auth_environ, read_admin_password, write_auth_config

        password = read_admin_password(args.admin_password_file, os.environ)
        config_path = write_auth_config(args.auth_dir)
        environ = auth_environ(os.environ, config_path, password)
        print(f"basic auth: config and user database in {config_path.parent} (admin user: admin)")
    print(endpoint_note(args.artifacts_destination, os.environ))
    print(f"tracking URI for specs: http://{args.host}:{args.port}  (tracking: {{uri: ...}})")
    print("running:", shlex.join(command))
    os.execve(command[0], command, environ)
    return 0  # not reached
