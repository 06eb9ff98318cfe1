"""The GPU acceptance script's in-process rows, run dry on CPU: the batch probe, ``bench train``
for SPADE and SC-GAN and the profiled step; its refusal without a GPU. (No Ray: this module runs
beside the session's Ray tests, not in their chain.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.acceptance import load_script, table_rows

pytestmark = pytest.mark.e2e


def test_dry_run_of_the_in_process_rows_prints_a_passing_table(tmp_path: Path) -> None:
    out = tmp_path / "table.md"

    argv = ["--device", "cpu", "--methods", "spade", "--checks", "probe,bench,profile"]
    status = load_script().main([*argv, "--out", str(out)])

    text = out.read_text()
    assert status == 0, text
    rows = table_rows(text)
    assert [(row[0].strip("| "), row[1]) for row in rows] == [
        ("probe", "spade, worker batch 4 at 64 px"),
        ("bench", "spade"),
        ("bench", "scgan"),
        ("profile", "spade step"),
    ]
    assert all(row[2] == "ok" for row in rows)
    assert "micro-batch 4 x 1" in rows[0][4]
    # The profiled step: no copies, no host syncs outside the optimiser.
    assert "DtoH 0, HtoD 0, syncs 0" in rows[-1][4]


def test_unknown_checks_are_refused_naming_the_choices(capsys) -> None:
    with pytest.raises(SystemExit):
        load_script().main(["--device", "cpu", "--checks", "sweep,nonsense"])
    assert "choose from sweep, ddp, probe, bench, profile" in capsys.readouterr().err


def test_refuses_cuda_without_a_gpu(capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert load_script().main([]) == 2
    assert "no CUDA device" in capsys.readouterr().out
