"""Cross-field checks and search-space checks, reported at their lines."""

from __future__ import annotations

import pytest

from sislab.errors import SpecError
from sislab.spec import load_spec, spec_from_dict, validate_file
from sislab.spec.checks import check_spec, search_key_problem


def test_lr_decay_longer_than_training():
    with pytest.raises(SpecError, match=r"train\.lr_decay_epochs=9 exceeds train\.epochs=5"):
        spec_from_dict({"name": "x", "train": {"epochs": 5, "lr_decay_epochs": 9}})


def test_batch_size_message_names_values_and_fix():
    with pytest.raises(SpecError, match=r"use a multiple of 4 such as 4 or 8"):
        spec_from_dict({"name": "x", "train": {"batch_size": 6}, "resources": {"num_workers": 4}})


def test_search_key_naming_no_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsearch:\n  space:\n    model.ngff: {grid: [32, 64]}\n")
    (line,) = validate_file(path)
    assert line.startswith(
        f"{path}:4: search.space.model.ngff: unknown field; did you mean 'model.ngf'? "
        "fields of model (spade): "
    )


def test_grid_value_failing_validation_at_its_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\nsearch:\n  space:\n    train.lr_g: {loguniform: [1.0e-5, 1.0e-3]}\n"
        "    model.ngf: {grid: [64, -1]}\n"
    )
    assert validate_file(path) == [
        f"{path}:5: search.space.model.ngf: value -1 is invalid: model.ngf: "
        "must be greater than 0 (got -1)"
    ]


def test_search_values_checked_across_fields():
    with pytest.raises(SpecError, match=r"value 3 is invalid: train\.batch_size: .*not divisible"):
        spec_from_dict({"name": "x", "search": {"space": {"train.batch_size": {"choice": [4, 3]}}}})


def test_randint_checks_its_last_reachable_value():
    # randint's upper bound is exclusive: [1, 3) yields 1 and 2, both valid workers for batch 16.
    spec = spec_from_dict(
        {"name": "x", "search": {"space": {"resources.num_workers": {"randint": [1, 3]}}}}
    )
    assert check_spec(spec) == []


def test_bad_domain_syntax_at_key_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsearch:\n  space:\n    train.lr_d: {gird: [1]}\n")
    with pytest.raises(
        SpecError,
        match=r":4: search\.space\.train\.lr_d: unknown domain 'gird'; "
        r"did you mean 'grid'\?",
    ):
        load_spec(path)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("train.lr_g", None),
        ("weights.paths.vgg19", None),
        ("dataset", None),
        ("train.lr_g.x", "train.lr_g is a value, not a section"),
        ("method", "method cannot be searched"),
        ("model.method", "model.method cannot be searched"),
        ("trian.lr_g", "unknown field; did you mean 'train.lr_g'?"),
    ],
)
def test_search_key_problem(key, expected):
    problem = search_key_problem(key, "spade")
    assert problem == expected if expected is None else problem.startswith(expected)


def test_errors_and_checks_reported_together(tmp_path):
    # A bad value elsewhere does not hide the search and cross-field problems.
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\nlosses:\n  gan: -1\ntrain:\n  batch_size: 5\n"
        "search:\n  space:\n    model.ndf: {choice: [0]}\n"
    )
    lines = validate_file(path)
    assert [line.split(": ")[1] for line in lines] == [
        "losses.gan",
        "train.batch_size",
        "search.space.model.ndf",
    ]


def test_dropped_value_skips_checks_on_it(tmp_path):
    # batch_size is invalid: no divisibility complaint about its default replacing it.
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ntrain:\n  batch_size: 0\nresources:\n  num_workers: 3\n")
    (line,) = validate_file(path)
    assert "train.batch_size: must be greater than 0" in line


def test_valid_search_spec_loads(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\nsearch:\n  algorithm: grid\n  space:\n    model.ngf: {grid: [32, 64]}\n"
        "    train.lr_d: {quniform: [1.0e-4, 4.0e-4, 1.0e-4]}\n"
    )
    assert load_spec(path).search.space["model.ngf"] == {"grid": [32, 64]}


def test_searched_eval_metric_must_be_computed(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: t\nmethod: spade\n"
        'dataset: {uri: "synthetic://shapes?size=32&classes=4&num=8&val=4", image_size: [32, 32]}\n'
        "eval: {metrics: [kid]}\n"
        "search:\n  metric: [eval/kid, eval/fid]\n  mode: [min, min]\n"
        "  algorithm: optuna\n  space: {train.lr_g: {loguniform: [1.0e-5, 1.0e-3]}}\n"
    )
    problems = validate_file(path)
    assert any(
        "spec.yaml:6: search.metric: eval/fid is never reported" in p and "add fid" in p
        for p in problems
    ), problems
    assert not any("eval/kid" in p for p in problems)


@pytest.mark.parametrize("metrics", [["fid"], ["fid", "kid"]])
def test_eval_spec_selection_metric_must_be_evaluated(metrics):
    data = {
        "name": "t",
        "method": "spade",
        "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8&val=4"},
        "eval": {"metrics": metrics, "select_best_by": "miou"},
    }
    with pytest.raises(SpecError, match=r"select_best_by 'miou' is not one of eval\.metrics"):
        spec_from_dict(data)


PBT = """\
name: p
train: {{epochs: 10, checkpoint_every_epochs: 2, num_checkpoints_to_keep: {keep}}}
search:
  algorithm: {algorithm}
  num_samples: 4
  space: {{train.lr_g: {{loguniform: [1.0e-5, 1.0e-3]}}}}
  scheduler:
    pbt:
      perturbation_interval: {interval}
      mutations:
        {key}: {domain}
"""


def _pbt_problems(tmp_path, **fields):
    values = {
        "keep": 2,
        "algorithm": "random",
        "interval": 4,
        "key": "train.lr_g",
        "domain": "{loguniform: [1.0e-5, 1.0e-3]}",
    }
    values.update(fields)
    path = tmp_path / "s.yaml"
    path.write_text(PBT.format(**values))
    return [p.removeprefix(f"{path}:") for p in validate_file(path)]


def test_pbt_spec_valid(tmp_path):
    assert _pbt_problems(tmp_path) == []
    assert _pbt_problems(tmp_path, key="losses.feat_match", domain="{uniform: [1.0, 20.0]}") == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"key": "model.ngf", "domain": "{choice: [16, 32]}"},
            "11: search.scheduler.pbt.mutations.model.ngf: model.ngf cannot change mid-training",
        ),
        (
            {"key": "losses.gann", "domain": "{uniform: [0.5, 2.0]}"},
            "11: search.scheduler.pbt.mutations.losses.gann: unknown field; did you mean "
            "'losses.gan'?",
        ),
        (
            {"key": "train.lr_g", "domain": "{grid: [1.0e-4]}"},
            "11: search.scheduler.pbt.mutations.train.lr_g: grid cannot be perturbed",
        ),
        (
            {"interval": 3},
            "9: search.scheduler.pbt.perturbation_interval: 3 is not a multiple of "
            "train.checkpoint_every_epochs (2)",
        ),
        (
            {"interval": 10},
            "9: search.scheduler.pbt.perturbation_interval: burn_in_period + "
            "perturbation_interval (0 + 10) reaches train.epochs (10)",
        ),
        ({"keep": 1}, "2: train.num_checkpoints_to_keep: PBT needs 2 or more (or null)"),
        ({"algorithm": "optuna"}, "4: search.algorithm: PBT picks the next configurations"),
    ],
)
def test_pbt_spec_problems_at_their_lines(tmp_path, fields, expected):
    problems = _pbt_problems(tmp_path, **fields)
    assert any(p.startswith(expected) for p in problems), problems


def test_pbt_and_asha_are_exclusive():
    with pytest.raises(SpecError, match="set one scheduler: asha or pbt"):
        spec_from_dict(
            {
                "name": "x",
                "search": {
                    "scheduler": {
                        "asha": {},
                        "pbt": {"mutations": {"train.lr_g": {"uniform": [1e-4, 2e-4]}}},
                    }
                },
            }
        )


def test_smis_metrics_need_per_class_latents(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmethod: spade\neval:\n  metrics: [fid, mcsd, mocd]\n")
    (line,) = validate_file(path)
    assert line.startswith(
        f"{path}:4: eval.metrics: eval.metrics ['mcsd', 'mocd'] need per-class latents, which "
        "method 'spade' does not have; remove mcsd and mocd from eval.metrics, or use method "
        "groupdnet"
    )
    ok = {"name": "x", "method": "groupdnet", "eval": {"metrics": ["mcsd", "mocd"]}}
    assert check_spec(spec_from_dict(ok)) == []


def test_smis_offline_protocol_needs_groupdnet(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmethod: spade\neval:\n  protocol: smis-deepfashion\n")
    (line,) = validate_file(path)
    assert line.startswith(f"{path}:4: eval.protocol: eval.protocol smis-deepfashion is evaluated")
    assert line.endswith("drop eval.protocol or use method groupdnet")
