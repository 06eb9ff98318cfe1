"""``sislab`` command line: parse, call, print. Errors of sislab print without a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sislab.errors import SislabError
from sislab.host_allocator import reexec_with_tcmalloc, restore_preload
from sislab.huge_pages import default_huge_pages

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from sislab.cli import (
        bench,
        bench_model,
        chaos,
        cluster,
        compare,
        data,
        estimate,
        eval_cmd,
        jobs,
        mlflow_cmd,
        models,
        recipe,
        report,
        resume,
        run,
        sample,
        search,
        spec_cmds,
        submit,
    )

    parser = argparse.ArgumentParser(
        prog="sislab", description="Ablation sweeps of semantic image synthesis GANs on Ray."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.register(sub)
    estimate.register(sub)
    resume.register(sub)
    chaos.register(sub)
    search.register(sub)
    compare.register(sub)
    spec_cmds.register(sub)
    models.register(sub)
    recipe.register(sub)
    report.register(sub)
    data.register(sub)
    sample.register(sub)
    eval_cmd.register(sub)
    submit.register(sub)
    jobs.register(sub)
    cluster.register(sub)
    mlflow_cmd.register(sub)
    bench_parser = sub.add_parser("bench", help="benchmarks with ratios against baselines")
    bench_sub = bench_parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    bench.register(bench_sub)
    bench_model.register(bench_sub)
    data.register_bench(bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sislab`` console script."""
    # Before any command imports torch, which reads it once (sislab.huge_pages).
    default_huge_pages()
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and getattr(args, "tcmalloc", False):
        reexec_with_tcmalloc()  # sislab.host_allocator: the timed step's process trains on it
    restore_preload()
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except SislabError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
