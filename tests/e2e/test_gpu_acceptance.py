"""The GPU acceptance script's Ray rows, run dry on CPU (64 px, 2 iterations, one method): 2
workers sharing one device with ``micro_batch_size: auto``, through the sweep path. Its in-process
rows, and the spec of its sweep check: test_gpu_acceptance_in_process.py.

The sweep check (1 worker, fp32 and bf16) runs the same ``_sweep`` as this row on the spec tested
there; it is not run here because its two trials are what other tests train on this path
(test_sweep.py in fp32, test_method_sweeps.py's SC-GAN trial in bf16): two more Ray trials cost
the suite ~45 s of its chain for no new code. The GPU run itself (scripts/gpu-acceptance.sh on a
CUDA machine) is not part of the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.acceptance import load_script, table_rows

pytestmark = pytest.mark.e2e


def test_dry_run_of_the_ray_rows_prints_a_passing_table(ray_cluster, tmp_path: Path, capsys):
    out = tmp_path / "table.md"

    argv = ["--device", "cpu", "--methods", "spade", "--checks", "ddp", "--out", str(out)]
    status = load_script().main(argv)

    text = out.read_text()
    assert status == 0, text
    assert text.strip() in capsys.readouterr().out  # the table printed is the one written
    rows = table_rows(text)
    assert [(row[0].strip("| "), row[1]) for row in rows] == [
        ("ddp", "spade, 2 workers on one cpu device, micro-batch auto"),
    ]
    (row,) = rows
    assert row[2] == "ok"
    # micro_batch_size auto: each worker probed (2 images each: 1 or 2 per pass) and the trial
    # logged the choice.
    assert "probe.micro_batch_size 2" in row[4] and "probe.grad_accumulation 1" in row[4]
