#!/usr/bin/env python
"""Markdown table of lockstep reports: ``python tools/lockstep/table.py REPORT.json ...``.

One row per report: method and options, teacher-forced iterations, the largest relative L2
difference of the whole G and D gradient vectors, the largest loss difference, the largest EMA
difference (OASIS family), then the free-running parameter distance from the official run after
the last iteration, sislab vs the 1e-6-perturbed official control.
"""

from __future__ import annotations

import json
import sys


def options(report: dict) -> str:
    a, s = report["args"], report["setup"]
    parts = [f"{s['size'][0]}x{s['size'][1]}", f"b{s['batch']}", f"{s['classes']} cl"]
    if s["use_instance"]:
        parts.append("inst")
    if a.get("no_class0"):
        parts.append("no class 0")
    if a.get("patch_sn_order"):
        parts.append("SN order patched")
    else:
        parts.append("as shipped")
    if report["method"] == "clade-icpe":
        parts.append(f"dist: {a.get('icpe_dist', 'official')}")
    return ", ".join(parts)


def row(report: dict) -> str:
    tf, fr = report["teacher_forced"], report["free_running"]
    g = max(r["G_grad"]["rel_l2"] for r in tf)
    d = max(r["D_grad"]["rel_l2"] for r in tf)
    loss = max(max(r["loss_absdiff"].values()) for r in tf)
    ema = [r["EMA_state_maxabs_diff"] for r in tf if "EMA_state_maxabs_diff" in r]
    cells = [
        report["method"],
        options(report),
        str(len(tf)),
        f"{g:.2g}",
        f"{d:.2g}",
        f"{loss:.2g}",
        f"{max(ema):.2g}" if ema else "-",
    ]
    if fr:
        last = fr[-1]
        s, c = last["param_rel_l2_sislab"], last["param_rel_l2_control"]
        ls = max(max(r["loss_absdiff_sislab"].values()) for r in fr)
        lc = max(max(r["loss_absdiff_control"].values()) for r in fr)
        cells += [
            str(len(fr)),
            f"{s['G']:.2g} / {s['D']:.2g}",
            f"{c['G']:.2g} / {c['D']:.2g}",
            f"{ls:.2g} / {lc:.2g}",
        ]
    else:
        cells += ["-", "-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| method | setup | TF iters | max G grad rel. L2 | max D grad rel. L2 | max loss diff "
    "| max EMA diff | free iters | param dist sislab G / D | param dist control G / D "
    "| max loss diff sislab / control |\n|" + "---|" * 11
)


if __name__ == "__main__":
    print(HEADER)
    for path in sys.argv[1:]:
        with open(path) as f:
            print(row(json.load(f)))
