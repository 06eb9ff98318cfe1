"""Which sweeps read a dataset through Ray Data (and so warm a new local Ray up for it)."""

from __future__ import annotations

from sislab.orchestrator.sweep import streams_data
from sislab.spec.loader import spec_from_dict

SYNTHETIC = "synthetic://shapes?size=32&classes=4&num=8"


def _spec(uri: str, space: dict | None = None):
    return spec_from_dict({"name": "x", "dataset": {"uri": uri}, "search": {"space": space or {}}})


def test_synthetic_layouts_alone_stream_nothing():
    assert not streams_data(_spec(SYNTHETIC))
    grid = {"dataset.uri": {"grid": [SYNTHETIC, SYNTHETIC + "&seed=1"]}}
    assert not streams_data(_spec(SYNTHETIC, grid))


def test_a_dataset_in_the_spec_or_any_search_value_streams():
    assert streams_data(_spec("/data/shapes"))
    assert streams_data(_spec(SYNTHETIC, {"dataset.uri": {"grid": [SYNTHETIC, "/data/shapes"]}}))
    assert streams_data(_spec(SYNTHETIC, {"dataset.uri": {"choice": [SYNTHETIC, "s3://b/d"]}}))
