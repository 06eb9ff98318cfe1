"""The papers' tables cover their suites' rows exactly, with numbers as the papers print them."""

from __future__ import annotations

import pytest

from sislab.search_spaces.paper_tables import PAPER_TABLES
from sislab.search_spaces.suites import SUITES


@pytest.mark.parametrize("name", sorted(PAPER_TABLES))
def test_a_paper_table_has_its_suites_rows_and_known_columns(name: str) -> None:
    table = PAPER_TABLES[name]
    assert list(table.paper) == list(SUITES[name].rows)  # the paper's row order
    labels = {c.label for c in table.columns}
    assert all(set(values) <= labels for values in table.paper.values())


def test_some_numbers_as_printed() -> None:
    assert PAPER_TABLES["scgan.table5_candidates"].paper["n = 8"] == {"mIoU↑": 67.9}  # no FID
    assert PAPER_TABLES["scgan.table6_nonlinearity"].paper["Softmax"] == {
        "mIoU↑": 66.9, "FID↓": 49.5
    }  # fmt: skip
    assert PAPER_TABLES["vasis.table4_noise_position"].paper[
        "va-clade noise=True position=learn"
    ] == {"FID-v↓": 55.18, "mIoU↑": 62.25, "Acc↑": 93.45}
    assert PAPER_TABLES["smis.table1_baselines"].paper["Group Dec"]["mCSD↑"] == 0.0003
    assert PAPER_TABLES["groupdnet.table3_ablations"].paper["w/o split"]["mOCD↓"] == 0.0189
