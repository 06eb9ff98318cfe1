"""The GPU acceptance script's Ray rows, run dry on CPU (64 px, 2 iterations, one method): the
sweep path with 1 worker in fp32 and bf16, and 2 workers sharing one device with
``micro_batch_size: auto``. Its in-process rows: test_gpu_acceptance_in_process.py.

The GPU run itself (scripts/gpu-acceptance.sh on a CUDA machine) is not part of the suite; this
runs the same code paths so that the script works when a GPU machine is lent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.acceptance import load_script, table_rows

pytestmark = pytest.mark.e2e


def test_dry_run_of_the_ray_rows_prints_a_passing_table(ray_cluster, tmp_path: Path, capsys):
    out = tmp_path / "table.md"

    argv = ["--device", "cpu", "--methods", "spade", "--checks", "sweep,ddp", "--out", str(out)]
    status = load_script().main(argv)

    text = out.read_text()
    assert status == 0, text
    assert text.strip() in capsys.readouterr().out  # the table printed is the one written
    rows = table_rows(text)
    assert [(row[0].strip("| "), row[1]) for row in rows] == [
        ("sweep", "spade fp32, 1 worker, 2 it"),
        ("sweep", "spade bf16, 1 worker, 2 it"),
        ("ddp", "spade, 2 workers on one cpu device, micro-batch auto"),
    ]
    assert all(row[2] == "ok" for row in rows)
    # micro_batch_size auto: each worker probed (2 images each: 1 or 2 per pass) and the trial
    # logged the choice.
    assert "probe.micro_batch_size 2" in rows[2][4] and "probe.grad_accumulation 1" in rows[2][4]
