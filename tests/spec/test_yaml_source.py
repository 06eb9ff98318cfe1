"""YAML text into plain data and 1-based positions."""

from __future__ import annotations

import pytest

from sislab.spec.yaml_source import YamlSourceError, parse_yaml


def test_positions_of_keys_and_items():
    doc = parse_yaml("a: 1\nb:\n  c: [1, 2]\n  d:\n    - x\n    - {e: 3.5}\n")
    assert doc.data == {"a": 1, "b": {"c": [1, 2], "d": ["x", {"e": 3.5}]}}
    assert type(doc.data["b"]["d"][1]["e"]) is float
    assert doc.positions[("a",)] == (1, 1)
    assert doc.positions[("b", "c")] == (3, 3)
    assert doc.positions[("b", "c", 1)] == (3, 10)
    assert doc.positions[("b", "d", 1)] == (6, 7)
    assert doc.positions[("b", "d", 1, "e")] == (6, 8)
    assert doc.line_of(("b", "d", 0, "missing", "deeper")) == 5
    assert doc.line_of(("zzz",)) == 1


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("a: 1\nb: [1\n", 3, "not valid YAML"),
        ("a: 2020-01-01\n", 1, "dates are not spec values"),
        ("a: !!binary aGVsbG8=\n", 1, "bytes values are not allowed"),
        ("a: !custom 3\n", 1, "YAML tags such as !custom"),
        ("a: 1\n? [x]\n: 2\n", 2, "mapping keys must be plain scalars"),
        ("a: \x00\n", 1, "unacceptable character"),
    ],
)
def test_problems(text, line, match):
    with pytest.raises(YamlSourceError, match=match) as info:
        parse_yaml(text)
    assert info.value.line == line
