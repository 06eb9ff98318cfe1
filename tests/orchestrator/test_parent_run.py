"""The parent run's answer: varied keys, best trial, caveats and the Markdown description."""

from __future__ import annotations

from sislab.orchestrator.parent_run import (
    TrialRow,
    best_row,
    caveats,
    render_description,
    search_params,
    varied_keys,
)
from sislab.spec.loader import spec_from_dict
from sislab.trainers.run_names import fields_of_label


def _row(trial: str, label: str, score: float | None, status="FINISHED", **tags) -> TrialRow:
    return TrialRow(
        run_id=f"run-{trial}",
        name=f"{label} · {trial}",
        status=status,
        fields=fields_of_label(label),
        score=score,
        tags={"sislab.trial_id": trial, "sislab.protocol.id": "abc123def456", **tags},
        metrics={},
    )


ROWS = [
    _row("t1", "method=spade lr_g=1e-4", 80.0, **{"sislab.perceptual_loss": "off: no vgg19"}),
    _row("t2", "method=clade lr_g=2e-4", 60.0, **{"sislab.metrics.substitute_weights": "alexnet"}),
    _row("t3", "method=clade lr_g=1e-4", None, status="FAILED"),
]


def test_varied_keys_cover_space_methods_repeats() -> None:
    spec = spec_from_dict(
        {
            "name": "v",
            "method": "spade",
            "search": {
                "methods": {"spade": {"model.ngf": {"grid": [8, 16]}}, "clade": {}},
                "space": {"train.lr_g": {"grid": [1e-4, 2e-4]}},
                "repeats": 2,
            },
        }
    )
    assert set(varied_keys(spec)) == {"method", "model.ngf", "train.lr_g", "train.seed"}
    params = search_params(spec)
    assert '"train.lr_g"' in params["search.space"] and '"clade"' in params["search.space"]
    assert params["search.metric"] == "train/loss_g"


def test_best_trial_is_a_finished_one_under_the_mode() -> None:
    assert best_row(ROWS, "min").run_id == "run-t2"
    assert best_row(ROWS, "max").run_id == "run-t1"
    assert best_row([ROWS[2]], "min") is None


def test_caveats_say_how_many_trials() -> None:
    assert caveats(ROWS) == [
        "metrics computed with substitute weights (alexnet): not comparable with published "
        "numbers (1/3 trials)",
        "perceptual loss off: no vgg19 (1/3 trials)",
        "trial failed (1/3 trials)",
    ]


def test_description_holds_best_table_protocol_caveats_space() -> None:
    text = render_description("abl", "eval/fid", "min", ROWS, {"space": {"train.lr_g": 1}})
    assert "Best trial under `eval/fid` (min): **method=clade lr_g=2e-4 · t2** = 60" in text
    assert "| trial | method | lr_g | status | eval/fid |" in text
    assert "| t1 | spade | 1e-4 | FINISHED | 80 |" in text
    assert "| t3 | clade | 1e-4 | FAILED | - |" in text
    assert "`abc123def456`" in text
    assert "- trial failed (1/3 trials)" in text
    assert '"train.lr_g": 1' in text


def test_description_without_scores() -> None:
    text = render_description("abl", "eval/fid", "min", [ROWS[2]], {})
    assert "No finished trial reported `eval/fid`." in text


def test_description_of_many_trials_lists_the_best_and_counts() -> None:
    rows = [_row(f"t{i:03d}", f"lr_g={i}e-5", float(200 - i)) for i in range(199)]
    rows.append(_row("t199", "lr_g=199e-5", None, status="FAILED"))
    text = render_description("many", "eval/fid", "min", rows, {"space": {"train.lr_g": 1}})
    assert len(text) < 8000  # MLflow's cap on a tag: the whole description survives
    assert "200 trials (1 failed, 199 finished); the best 25 under `eval/fid` below" in text
    assert "| t198 | 198e-5 | FINISHED | 2 |" in text and "| t174 |" in text
    assert "| t173 |" not in text and "| t199 |" not in text
    assert "- trial failed (1/200 trials)" in text and '"train.lr_g": 1' in text
