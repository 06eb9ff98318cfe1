"""The GPU acceptance script's in-process rows, run dry on CPU: the batch probe, ``bench train``
for SPADE and SC-GAN and the profiled step; the spec of its sweep check; its refusal without a
GPU. (No Ray: this module runs beside the session's Ray tests, not in their chain.)"""

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


def test_the_sweep_check_is_a_valid_spec_of_every_method_in_both_precisions(tmp_path) -> None:
    from ruamel.yaml import YAML

    from sislab.search_spaces.space import grid_configurations
    from sislab.search_spaces.trial_spec import trial_spec
    from sislab.search_spaces.validate import space_of
    from sislab.spec.loader import load_spec

    script = load_script()
    settings, _, _ = script.parse_args(["--device", "cpu", "--methods", "spade,scgan"])
    path = tmp_path / "sweep.yaml"
    with path.open("w") as handle:
        YAML().dump(script.sweep_spec(settings), handle)
    spec = load_spec(path)  # raises, naming the field, on an invalid spec
    trials = [trial_spec(spec, c) for c in grid_configurations(space_of(spec))]
    assert sorted((t.method, t.train.precision) for t in trials) == [
        ("scgan", "bf16"), ("scgan", "fp32"), ("spade", "bf16"), ("spade", "fp32"),
    ]  # fmt: skip
    assert all(t.resources.num_workers == 1 for t in trials)
    assert {t.model.ngf for t in trials if t.method == "scgan"} == {2}  # the tiny widths


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
