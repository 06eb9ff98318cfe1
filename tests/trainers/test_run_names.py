"""Trial names and varied fields: short keys and values, the method first, the id last."""

from __future__ import annotations

import pytest

from sislab.trainers.run_names import (
    fields_of_label,
    label_of_run_name,
    short_keys,
    short_value,
    trial_run_name,
    varied_fields,
    varies_method,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2e-4, "2e-4"),
        (1.5e-4, "1.5e-4"),
        (0.001234, "1.23e-3"),
        (0.5, "0.5"),
        (64.0, "64"),
        (64, "64"),
        (0.0, "0"),
        (250000.0, "250000"),
        (2.5e6, "2.5e6"),
        (True, "true"),
        (None, "none"),
        ("clade", "clade"),
        ([0.0, 0.999], "0,0.999"),
    ],
)
def test_short_value(value, text: str) -> None:
    assert short_value(value) == text


def test_short_keys_keep_the_tail_unless_it_is_ambiguous() -> None:
    keys = ["train.lr_g", "model.ngf", "search.ngf", "method"]
    assert short_keys(keys) == {
        "train.lr_g": "lr_g",
        "model.ngf": "model.ngf",
        "search.ngf": "search.ngf",
        "method": "method",
    }


def test_run_name_starts_with_the_method_then_the_varied_fields() -> None:
    overrides = {"train.lr_g": 2e-4, "model.ngf": 32}
    assert varied_fields(overrides, "clade") == {"method": "clade", "ngf": "32", "lr_g": "2e-4"}
    name = trial_run_name("f150bb51", overrides, "clade")
    assert name == "method=clade ngf=32 lr_g=2e-4 · f150bb51"
    assert label_of_run_name(name) == "method=clade ngf=32 lr_g=2e-4"
    assert fields_of_label(label_of_run_name(name)) == {
        "method": "clade",
        "ngf": "32",
        "lr_g": "2e-4",
    }


def test_a_trial_that_varies_nothing_is_named_by_its_id() -> None:
    assert trial_run_name("f150bb51", {}) == "f150bb51"
    assert label_of_run_name("f150bb51") == ""


def test_varies_method() -> None:
    assert varies_method({"methods": {"spade": {}, "clade": {}}, "space": {}})
    assert varies_method({"space": {"method": {"grid": ["spade", "clade"]}}})
    assert not varies_method({"methods": {}, "space": {"train.lr_g": {"grid": [1e-4]}}})
