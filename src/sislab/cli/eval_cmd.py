"""``sislab eval``: metrics outside training (FID/KID, segmenters, SMIS) and the named protocols."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` with its subcommands (``fid``, ``train-segmenter``, ``segment``, ``smis``,
    ``protocols``)."""
    from sislab.cli import eval_fid, eval_segmenter, eval_smis

    parser = sub.add_parser(
        "eval", help="FID/KID, segmentation scores, SMIS diversity, evaluation protocols"
    )
    eval_sub = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    eval_fid.register(eval_sub)
    eval_segmenter.register(eval_sub)
    eval_smis.register(eval_sub)
    protocols = eval_sub.add_parser(
        "protocols", help="the papers' evaluation protocols (eval.protocol) with their ids"
    )
    protocols.add_argument("--json", action="store_true", help="print the records as JSON")
    protocols.set_defaults(handler=_protocols)


def _protocols(args: argparse.Namespace) -> int:
    from sislab.metrics.protocol import presets, protocol_id

    known = presets()
    if args.json:
        data = {
            name: {"id": protocol_id(p), **p.model_dump(mode="json")} for name, p in known.items()
        }
        print(json.dumps(data, indent=2))
        return 0
    width = max(len(name) for name in known)
    for name, record in known.items():
        print(f"{name:<{width}}  {protocol_id(record)}  {record.description}")
    return 0
