"""The papers' tables behind the ablation suites: their columns and the papers' own numbers.

``sislab report`` renders a finished suite sweep as one of these tables, the suite's rows in the
paper's order. A column names the sislab metric it shows and the factor to the paper's unit
(sislab logs mIoU and accuracy as fractions, the papers print percentages). A number missing here
is missing in the paper's text (e.g. SC-GAN Table 5 prints mIoU only), and the report shows it as
missing: never filled in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One metric column of a paper's table.

    Args:
        label: As the paper prints it, with its direction (``mIoU↑``).
        metric: The MLflow metric sislab logs for it (``eval/miou``).
        scale: Factor from sislab's value to the paper's unit.
        digits: Decimals the paper prints.
    """

    label: str
    metric: str
    scale: float = 1.0
    digits: int = 1


@dataclass(frozen=True)
class PaperTable:
    """A paper's table: where it is, its columns, and its numbers per suite row.

    Args:
        suite: The ``search_spaces.suites`` name whose rows are the table's.
        title: Paper and table, for the caption.
        dataset: The dataset the paper's numbers are on.
        columns: The metric columns, in the paper's order.
        paper: Suite row label -> column label -> the paper's number (absent: not in its text).
    """

    suite: str
    title: str
    dataset: str
    columns: tuple[Column, ...]
    paper: dict[str, dict[str, float]]


MIOU = Column("mIoU↑", "eval/miou", 100.0, 1)
FID = Column("FID↓", "eval/fid", 1.0, 1)
_VASIS_COLUMNS = (
    Column("FID-v↓", "eval/fid", 1.0, 2),
    Column("mIoU↑", "eval/miou", 100.0, 2),
    Column("Acc↑", "eval/accuracy", 100.0, 2),
)
_SMIS_COLUMNS = (
    Column("FID↓", "eval/fid", 1.0, 2),
    Column("mCSD↑", "eval/mcsd", 1.0, 4),
    Column("mOCD↓", "eval/mocd", 1.0, 4),
    Column("LPIPS↑", "eval/lpips_diversity", 1.0, 3),
)


def _rows(labels: list[str], columns: tuple[Column, ...], values: list[tuple]) -> dict:
    return {
        label: {c.label: v for c, v in zip(columns, row, strict=True) if v is not None}
        for label, row in zip(labels, values, strict=True)
    }


def _vasis(labels: list[str], values: dict[str, list[tuple]]) -> dict:
    """VASIS rows are ``'{method} {label}'`` for VA-SPADE then VA-CLADE."""
    return {
        f"{method} {label}": dict(zip([c.label for c in _VASIS_COLUMNS], row, strict=True))
        for method, rows in values.items()
        for label, row in zip(labels, rows, strict=True)
    }


_NOISE_POSITION = [
    f"noise={n} position={p}"
    for n, p in ((False, "none"), (True, "none"), (False, "learn"), (True, "learn"))
]
_VARIANTS = ["full", "one-channel", "plus", "rand", "absolute position", "relative position"]
# VASIS Tables 4 and 5: FID-v, mIoU, Acc per row, VA-SPADE then VA-CLADE.
_VASIS_TABLE4 = {
    "va-spade": [(57.22, 62.66, 93.49), (54.11, 61.78, 93.38), (54.92, 61.64, 93.51),
                 (53.30, 61.08, 93.40)],
    "va-clade": [(57.04, 57.65, 92.94), (55.58, 61.89, 93.42), (58.52, 61.64, 93.57),
                 (55.18, 62.25, 93.45)],
}  # fmt: skip
_VASIS_TABLE5 = {
    "va-spade": [(53.30, 61.08, 93.40), (54.21, 60.46, 93.23), (52.70, 60.66, 93.41),
                 (53.54, 60.35, 93.16), (54.09, 60.46, 93.26), (54.14, 60.86, 93.43)],
    "va-clade": [(55.18, 62.25, 93.45), (56.14, 61.56, 93.50), (53.17, 61.20, 93.32),
                 (55.54, 59.83, 93.09), (54.54, 59.84, 93.32), (55.64, 61.99, 93.56)],
}  # fmt: skip

PAPER_TABLES: dict[str, PaperTable] = {
    t.suite: t
    for t in (
        PaperTable(
            "scgan.table3_ops",
            "SC-GAN (Wang et al., ICCV 2021) Table 3: operators of the SRG",
            "Cityscapes",
            (MIOU, FID),
            _rows(
                ["Conv+BN", "Conv+SCN", "SCC+BN", "SCC+SCN"],
                (MIOU, FID),
                [(62.6, 69.7), (63.1, 60.9), (66.3, 54.0), (66.9, 49.5)],
            ),
        ),
        PaperTable(
            "scgan.svg_loss",
            "SC-GAN (Wang et al., ICCV 2021) Table 4: semantic vector generation loss L_s",
            "Cityscapes",
            (MIOU, FID),
            _rows(
                ["w/o L_s", "L_s (l1)", "L_s (l2)", "L_s (vgg)"],
                (MIOU, FID),
                [(60.3, 82.5), (66.9, 49.5), (63.4, 53.3), (64.2, 51.8)],
            ),
        ),
        PaperTable(
            "scgan.table5_candidates",
            "SC-GAN (Wang et al., ICCV 2021) Table 5: shared weight candidates n of SCC "
            "(norm candidates 4)",
            "Cityscapes",
            (MIOU, FID),
            # The paper's Table 5 prints mIoU only.
            _rows(
                ["n = 8", "n = 4", "n = 2", "n = 1"],
                (MIOU, FID),
                [(67.9, None), (67.3, None), (64.8, None), (61.2, None)],
            ),
        ),
        PaperTable(
            "scgan.table6_nonlinearity",
            "SC-GAN (Wang et al., ICCV 2021) Table 6: nonlinear function on the semantic vectors",
            "Cityscapes",
            (MIOU, FID),
            _rows(
                ["Sigmoid", "Tanh", "ReLU", "None", "Softmax"],
                (MIOU, FID),
                [(62.6, 57.6), (63.1, 56.8), (61.7, 66.5), (60.2, 73.9), (66.9, 49.5)],
            ),
        ),
        PaperTable(
            "vasis.table4_noise_position",
            "VASIS Table 4: semantic noise x learnable position code",
            "Cityscapes",
            _VASIS_COLUMNS,
            _vasis(_NOISE_POSITION, _VASIS_TABLE4),
        ),
        PaperTable(
            "vasis.table5_variants",
            "VASIS Table 5: variants of semantic noise and position code",
            "Cityscapes",
            _VASIS_COLUMNS,
            _vasis(_VARIANTS, _VASIS_TABLE5),
        ),
        PaperTable(
            "groupdnet.table3_ablations",
            "GroupDNet (Zhu et al., CVPR 2020) Table 3: ablations",
            "DeepFashion",
            _SMIS_COLUMNS,
            _rows(
                ["GroupDNet", "w/o map", "w/o split", "->GroupNorm", "w/o SyncBN", "w/o SpecNorm"],
                _SMIS_COLUMNS,
                [
                    (9.50, 0.0264, 0.0033, 0.228),
                    (11.01, 0.0253, 0.0036, 0.217),
                    (10.76, 0.0054, 0.0189, 0.216),
                    (10.33, 0.0256, 0.0040, 0.225),
                    (9.76, 0.0251, 0.0037, 0.216),
                    (10.42, 0.0290, 0.0153, 0.231),
                ],
            ),
        ),
        PaperTable(
            "smis.table1_baselines",
            "GroupDNet (Zhu et al., CVPR 2020) Table 1: SMIS baselines",
            "DeepFashion",
            _SMIS_COLUMNS,
            _rows(
                ["MulNet", "GroupNet", "Group Enc", "Group Dec", "VSPADE", "GroupDNet"],
                _SMIS_COLUMNS,
                [
                    (12.07, 0.0244, 0.0019, 0.202),
                    (12.58, 0.0276, 0.0017, 0.203),
                    (10.83, 0.0232, 0.0065, 0.217),
                    (9.84, 0.0003, 0.0257, 0.206),
                    (10.02, 0.0304, 0.1843, 0.207),
                    (9.50, 0.0264, 0.0033, 0.228),
                ],
            ),
        ),
    )
}
