"""``sislab eval``: metrics outside training (FID/KID between folders or datasets, segmenters)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` with its subcommands (``fid``, ``train-segmenter``, ...)."""
    from sislab.cli import eval_fid, eval_segmenter

    parser = sub.add_parser("eval", help="FID/KID, segmentation scores, segmenter training")
    eval_sub = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    eval_fid.register(eval_sub)
    eval_segmenter.register(eval_sub)
