"""Parameter counts of SPADE, CLADE, CLADE-ICPE, OASIS and VA-* against VASIS Tables 3, 4 and 5.

Networks are built on the meta device with spectral norm off (it changes no count), so the
full-size models cost no memory and little time.
"""

from __future__ import annotations

import pytest
import torch

from sislab.datasets.presets import preset_geometry
from sislab.models.registry import get_method

# VASIS Table 3: (G params M, D params M) per dataset.
TABLE3 = {
    "cityscapes": {
        "spade": (93.05, 5.60),
        "clade": (67.90, 5.60),
        "clade-icpe": (67.90, 5.60),
        "oasis": (71.11, 22.25),
        "va-spade": (83.34, 5.60),
        "va-clade": (70.41, 5.60),
        "va-oasis": (61.82, 22.25),
    },
    "ade20k": {
        "spade": (96.49, 5.84),
        "clade": (71.43, 5.84),
        "clade-icpe": (71.43, 5.84),
        "oasis": (74.31, 22.26),
        "va-spade": (88.26, 5.84),
        "va-clade": (74.16, 5.84),
        "va-oasis": (66.05, 22.26),
    },
    "coco-stuff": {
        "spade": (97.48, 5.90),
        "clade": (72.51, 5.90),
        "clade-icpe": (72.51, 5.90),
        "oasis": (75.20, 22.26),
        "va-spade": (89.97, 5.90),
        "va-clade": (75.59, 5.90),
        "va-oasis": (67.50, 22.26),
    },
}

# VASIS Tables 4 and 5 (Cityscapes): model switches -> G params (M).
ROWS = {
    "no-noise/no-pos": ({"semantic_noise": False, "position_code": "none"}, 93.05, 67.90),
    "noise/no-pos": ({"semantic_noise": True, "position_code": "none"}, 81.22, 68.29),
    "no-noise/pos": ({"semantic_noise": False, "position_code": "learn"}, 95.21, 70.06),
    "noise/pos": ({"semantic_noise": True, "position_code": "learn"}, 83.34, 70.41),
    "one-channel": ({"noise_channels": "one"}, 83.31, 70.38),
    "plus": ({"noise_mode": "plus"}, 96.78, 71.59),
    "rand": ({"noise_mode": "rand"}, 83.34, 70.41),
    "absolute": ({"position_code": "fix"}, 81.25, 68.32),
    "relative": ({"position_code": "relative"}, 81.25, 68.32),
}

NO_SN = {"spectral_norm_g": False, "spectral_norm_d": False}


def _millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def _counts(name: str, dataset: str, fields: dict, with_d: bool = True) -> tuple[float, float]:
    method = get_method(name)
    cfg = method.config(**NO_SN, **fields)
    geometry = preset_geometry(dataset)
    with torch.device("meta"):
        g = _millions(method.build_generator(cfg, geometry))
        d = _millions(method.build_discriminator(cfg, geometry)) if with_d else 0.0
    return g, d


@pytest.mark.parametrize("dataset", sorted(TABLE3))
@pytest.mark.parametrize("name", sorted(TABLE3["cityscapes"]))
def test_table3_counts_within_2_percent(name: str, dataset: str) -> None:
    paper_g, paper_d = TABLE3[dataset][name]
    g, d = _counts(name, dataset, {})
    assert g == pytest.approx(paper_g, rel=0.02)
    assert d == pytest.approx(paper_d, rel=0.02)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_tables_4_and_5_counts_within_2_percent(row: str) -> None:
    fields, paper_va_spade, paper_va_clade = ROWS[row]
    g_spade, _ = _counts("va-spade", "cityscapes", fields, with_d=False)
    g_clade, _ = _counts("va-clade", "cityscapes", fields, with_d=False)
    assert g_spade == pytest.approx(paper_va_spade, rel=0.02)
    assert g_clade == pytest.approx(paper_va_clade, rel=0.02)


def test_no_noise_no_position_is_the_base_method() -> None:
    fields = {"semantic_noise": False, "position_code": "none"}
    assert _counts("va-spade", "cityscapes", fields, False) == _counts(
        "spade", "cityscapes", {}, False
    )
    assert _counts("va-clade", "cityscapes", fields, False) == _counts(
        "clade", "cityscapes", {}, False
    )
