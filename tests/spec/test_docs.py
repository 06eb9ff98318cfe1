"""docs/spec.md is exactly the rendering of the Field descriptions."""

from __future__ import annotations

from sislab.spec.docs import DOCS_PATH, render_spec_docs


def test_committed_docs_match_rendering():
    assert DOCS_PATH.read_text(encoding="utf-8") == render_spec_docs(), (
        "docs/spec.md is stale: run `python -m sislab.spec.docs`"
    )


def test_rendering_covers_sections_and_methods():
    text = render_spec_docs()
    for heading in ("## `train`", "## `search.scheduler.asha`", "## `model` for `method: spade`"):
        assert heading in text
    assert "| `lr_g` | float > 0 | `0.0001` | Generator (and encoder) learning rate. |" in text
