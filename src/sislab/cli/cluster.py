"""``sislab cluster init|validate``: KubeRay and cluster-launcher manifests, checked offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sislab.errors import ClusterError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cluster`` with ``init`` and ``validate``."""
    from sislab.cluster.kuberay import ClusterOptions

    defaults = ClusterOptions()
    parser = sub.add_parser("cluster", help="generate and check Ray cluster manifests")
    actions = parser.add_subparsers(dest="cluster_action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init", help="write a commented KubeRay or cluster-launcher manifest",
        description="Write a manifest; every field is explained in docs/cluster.md.",
    )  # fmt: skip
    init.add_argument("--kind", choices=("kuberay", "aws", "gcp"), required=True)
    init.add_argument("--out", type=Path, required=True, help="file to write")
    init.add_argument(
        "--job", action="store_true", help="kuberay: a RayJob for one sweep, not a RayCluster"
    )
    init.add_argument("--force", action="store_true", help="overwrite --out")
    init.add_argument("--name", default=defaults.name)
    init.add_argument("--image", default=defaults.image, help="image with sislab installed")
    init.add_argument("--gpus-per-node", type=int, default=defaults.worker_gpus)
    init.add_argument("--cpus-per-node", type=int, default=defaults.worker_cpus)
    init.add_argument("--memory-per-node", default=defaults.worker_memory)
    init.add_argument("--min-replicas", type=int, default=defaults.min_replicas)
    init.add_argument("--max-replicas", type=int, default=defaults.max_replicas)
    init.add_argument("--accelerator", default=None, help="GPU product for the nodeSelector")
    init.add_argument("--mlflow-uri", default=defaults.mlflow_uri)
    init.add_argument("--s3-endpoint", default=None, help="S3-compatible endpoint (MinIO)")
    init.add_argument(
        "--s3-secret", default=defaults.s3_secret, help="Kubernetes Secret with the S3 keys"
    )
    init.set_defaults(handler=_init)
    validate = actions.add_parser("validate", help="check manifests offline")
    validate.add_argument("files", type=Path, nargs="+")
    validate.set_defaults(handler=_validate)


def _init(args: argparse.Namespace) -> int:
    from sislab.cluster.kuberay import ClusterOptions, kuberay_manifest
    from sislab.cluster.launcher import launcher_manifest
    from sislab.cluster.validate import validate_file

    if args.min_replicas > args.max_replicas:
        raise ClusterError(
            f"--min-replicas {args.min_replicas} > --max-replicas {args.max_replicas}"
        )
    if args.out.exists() and not args.force:
        raise ClusterError(f"{args.out} exists", fix="pass --force to overwrite it")
    opts = ClusterOptions(
        name=args.name, image=args.image, worker_gpus=args.gpus_per_node,
        worker_cpus=args.cpus_per_node, worker_memory=args.memory_per_node,
        min_replicas=args.min_replicas, max_replicas=args.max_replicas,
        accelerator=args.accelerator, mlflow_uri=args.mlflow_uri, s3_endpoint=args.s3_endpoint,
        s3_secret=args.s3_secret,
    )  # fmt: skip
    if args.kind == "kuberay":
        text = kuberay_manifest(opts, "RayJob" if args.job else "RayCluster")
    else:
        text = launcher_manifest(opts, args.kind)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    problems = validate_file(args.out)
    if problems:  # a generator bug, never the user's
        raise ClusterError("generated manifest does not validate:\n" + "\n".join(problems))
    print(f"wrote {args.out} (valid); next: see docs/cluster.md")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from sislab.cluster.validate import validate_file

    failed = 0
    for path in args.files:
        problems = validate_file(path)
        if problems:
            failed += 1
            print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"{path}: valid")
    return 1 if failed else 0
