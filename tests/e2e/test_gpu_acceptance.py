"""The GPU acceptance script's table, run dry on CPU (64 px, 2 iterations, one method).

The GPU run itself (scripts/gpu-acceptance.sh on a CUDA machine) is not part of the suite; this
runs the same code paths (the sweep path with 1 and 2 workers, bench train, the profiled step)
so that the script works when a GPU machine is lent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_acceptance.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_dry_run_on_cpu_prints_a_passing_table(ray_cluster, tmp_path: Path, capsys) -> None:
    script = _script()
    out = tmp_path / "table.md"

    status = script.main(["--device", "cpu", "--methods", "spade", "--out", str(out)])

    text = out.read_text()
    assert status == 0, text
    assert text.strip() in capsys.readouterr().out  # the table printed is the one written
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    checks = [(row[0].strip("| "), row[1]) for row in rows]
    assert checks == [
        ("sweep", "spade fp32, 1 worker, 2 it"),
        ("sweep", "spade bf16, 1 worker, 2 it"),
        ("ddp", "spade, 2 workers on one cpu device, micro-batch auto"),
        ("probe", "spade, worker batch 4 at 64 px"),
        ("bench", "spade"),
        ("bench", "scgan"),
        ("profile", "spade step"),
    ]
    assert all(row[2] == "ok" for row in rows)
    # micro_batch_size auto: each worker probed (2 images each: 1 or 2 per pass) and the trial
    # logged the choice.
    assert "probe.micro_batch_size 2" in rows[2][4] and "probe.grad_accumulation 1" in rows[2][4]
    assert "micro-batch 4 x 1" in rows[3][4]
    # The profiled step: no copies, no host syncs outside the optimiser.
    assert "DtoH 0, HtoD 0, syncs 0" in rows[-1][4]


def test_refuses_cuda_without_a_gpu(capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert _script().main([]) == 2
    assert "no CUDA device" in capsys.readouterr().out
