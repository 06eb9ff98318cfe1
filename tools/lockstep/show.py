#!/usr/bin/env python
"""Print the summary of a lockstep report: ``python tools/lockstep/show.py REPORT.json``."""

from __future__ import annotations

import json
import sys


def summary_lines(report: dict) -> list[str]:
    """One table row per teacher-forced and free-running iteration, then the maxima."""
    tf = report["teacher_forced"]
    lines = [
        f"method {report['method']}  setup {report['setup']}  copied {report['copied_entries']}"
    ]
    if "icpe_dist_maxabs_diff" in report:
        lines.append(
            f"ICPE dist map, sislab online vs official script: max |diff| "
            f"{report['icpe_dist_maxabs_diff']:.3g}"
        )
    lines.append(
        "teacher-forced: iter | G rel L2 | D rel L2 | G cos | D cos | max |loss diff| | BN | EMA"
    )
    for r in tf:
        lines.append(
            f"  {r['iter']} | {r['G_grad']['rel_l2']:.3g} | {r['D_grad']['rel_l2']:.3g} | "
            f"{r['G_grad']['cosine']:.9f} | {r['D_grad']['cosine']:.9f} | "
            f"{max(r['loss_absdiff'].values()):.3g} | "
            f"{r['G_bn_running_stats_maxabs_diff']:.3g} | {r.get('EMA_state_maxabs_diff', '-')}"
        )
    if tf:
        lines.append(
            f"  max G {max(r['G_grad']['rel_l2'] for r in tf):.3g}  "
            f"max D {max(r['D_grad']['rel_l2'] for r in tf):.3g}  "
            f"max loss diff {max(max(r['loss_absdiff'].values()) for r in tf):.3g}"
        )
    fr = report["free_running"]
    if fr:
        lines.append(
            "free-running: iter | param dist sislab G/D | control G/D | "
            "max |loss diff| sislab | control"
        )
        for r in fr:
            s, c = r["param_rel_l2_sislab"], r["param_rel_l2_control"]
            lines.append(
                f"  {r['iter']} | {s['G']:.3g} / {s['D']:.3g} | {c['G']:.3g} / {c['D']:.3g} | "
                f"{max(r['loss_absdiff_sislab'].values()):.3g} | "
                f"{max(r['loss_absdiff_control'].values()):.3g}"
            )
    return lines


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("\n".join(summary_lines(json.load(f))))
