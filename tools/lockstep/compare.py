"""Comparisons of gradients, states and parameters between the two sides."""

from __future__ import annotations

import torch


def grad_diff(official: dict, sislab: dict) -> dict:
    """Relative L2 difference and cosine of two whole gradient vectors (sislab names as keys).

    A parameter without a gradient on one side counts as a zero gradient there, so a tensor that
    only one side trains is reported, not skipped.
    """
    keys = sorted(set(official) | set(sislab))

    def get(d, k, like):
        return d[k] if k in d else torch.zeros_like(like)

    num = den = den_s = dot = 0.0
    worst, worst_rel = None, -1.0
    for k in keys:
        ref = official.get(k, sislab.get(k))
        a, b = get(official, k, ref), get(sislab, k, ref)
        d2 = float((a - b).pow(2).sum())
        num += d2
        den += float(a.pow(2).sum())
        den_s += float(b.pow(2).sum())
        dot += float((a * b).sum())
        rel = d2**0.5 / (float(a.norm()) + 1e-30)
        if rel > worst_rel:
            worst, worst_rel = k, rel
    return {
        "rel_l2": num**0.5 / (den**0.5 + 1e-30),
        "cosine": dot / (den**0.5 * den_s**0.5 + 1e-30),
        "tensors": len(keys),
        "only_official": sorted(set(official) - set(sislab)),
        "only_sislab": sorted(set(sislab) - set(official)),
        "worst_tensor": worst,
        "worst_tensor_rel": worst_rel,
    }


def state_maxabs(
    official_state: dict, sislab_state: dict, key_map: dict, suffixes, value=None
) -> tuple[float, str | None]:
    """Largest |official - sislab| over the mapped state entries whose name ends in
    ``suffixes``, and the official name where it occurs (``value`` maps official layouts)."""
    worst, where = 0.0, None
    for ok, sk in key_map.items():
        if not ok.endswith(suffixes) or not official_state[ok].numel():
            continue
        ref = official_state[ok] if value is None else value(ok, official_state[ok])
        diff = float((ref.float() - sislab_state[sk].float()).abs().max())
        if diff > worst:
            worst, where = diff, ok
    return worst, where


def param_rel_l2(a_params: dict, b_params: dict, key_map: dict) -> float:
    """||a - b|| / ||a|| over the parameters named in ``key_map`` (a name -> b name)."""
    num = den = 0.0
    with torch.no_grad():
        for ak, bk in key_map.items():
            if ak in a_params:
                a = a_params[ak].detach()
                num += float((a - b_params[bk].detach()).pow(2).sum())
                den += float(a.pow(2).sum())
    return (num / den) ** 0.5
