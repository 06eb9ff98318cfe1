"""Dotted overrides and re-validated specs."""

from __future__ import annotations

import pytest

from sislab.errors import SpecError
from sislab.spec import Spec, resolve
from sislab.spec.overrides import apply_overrides


def test_apply_overrides_sets_nested_copy():
    data = {"name": "x", "train": {"lr_g": 1.0}}
    out = apply_overrides(data, {"train.lr_g": 2.0, "model.ngf": 32})
    assert out == {"name": "x", "train": {"lr_g": 2.0}, "model": {"ngf": 32}}
    assert data == {"name": "x", "train": {"lr_g": 1.0}}


def test_apply_overrides_through_a_value_is_an_error():
    with pytest.raises(SpecError, match=r"override 'train\.lr_g\.x': train\.lr_g is a value"):
        apply_overrides({"train": {"lr_g": 1.0}}, {"train.lr_g.x": 1})


def test_resolve_round_trip():
    spec = Spec(name="x")
    assert resolve(spec, {}) == spec
    new = resolve(spec, {"model.ngf": 32, "train.lr_g": 2e-4, "dataset.image_size": [32, 48]})
    assert (new.model.ngf, new.train.lr_g, new.dataset.image_size) == (32, 2e-4, (32, 48))
    assert (
        resolve(new, {"model.ngf": 64, "train.lr_g": 1e-4, "dataset.image_size": [64, 64]}) == spec
    )
    assert spec.model.ngf == 64  # frozen original untouched


def test_resolve_names_the_override():
    with pytest.raises(
        SpecError, match=r"override 'model\.ngf': model\.ngf: must be greater than 0"
    ):
        resolve(Spec(name="x"), {"model.ngf": -1})
    with pytest.raises(
        SpecError,
        match=r"override 'train\.lr_gg': train\.lr_gg: unknown field; "
        r"did you mean 'lr_g'\?",
    ):
        resolve(Spec(name="x"), {"train.lr_gg": 1e-3})


def test_resolve_runs_cross_field_checks():
    with pytest.raises(SpecError, match=r"not divisible by resources\.num_workers=2"):
        resolve(Spec(name="x"), {"train.batch_size": 7})
