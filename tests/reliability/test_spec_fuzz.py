"""Bad input, specs: >1,000 generated documents through ``validate_file``, never a traceback.

Every document ends as a list of ``FILE:LINE: ...`` problems (or as a valid spec that then loads);
a handful go through the ``sislab validate`` CLI, which must exit 2 without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sislab.models.methods.spade import SpadeConfig
from sislab.spec.loader import load_spec, validate_file
from sislab.spec.spec import Spec

WORK = Path(tempfile.mkdtemp(prefix="sislab-spec-fuzz-"))
FILE = WORK / "fuzz.yaml"
SETTINGS = settings(
    deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
RUNS = {"count": 0}

SECTIONS: dict[str, list[str]] = {
    name: list(info.annotation.model_fields)
    for name, info in Spec.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}
SECTIONS["model"] = list(SpadeConfig.model_fields)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["spade", "scgan", "s3://b/p", "synthetic://shapes?size=8", "1e999", "-0"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_specs(draw) -> dict:
    """A plausible spec with random values (wrong types, huge numbers) in real fields."""
    spec: dict = {"name": draw(st.sampled_from(["x", "", "a b", 3]))}
    if draw(st.booleans()):
        spec["method"] = draw(st.sampled_from(["spade", "scgan", "clade", "nope", 1]))
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=3, unique=True)):
        fields = SECTIONS[section] + ["unknown_field"]
        keys = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
        spec[section] = {key: draw(values) for key in keys}
    return spec


def _check(raw: bytes) -> list[str]:
    FILE.write_bytes(raw)
    RUNS["count"] += 1
    problems = validate_file(FILE)  # must not raise, whatever the bytes
    assert isinstance(problems, list)
    assert all(isinstance(p, str) and p.startswith(str(FILE)) for p in problems), problems
    if not problems:
        load_spec(FILE)  # "valid" means it really loads
    return problems


@settings(SETTINGS, max_examples=250)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


@settings(SETTINGS, max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _check(text.encode("utf-8", "surrogatepass"))


@settings(SETTINGS, max_examples=250)
@given(values)
def test_arbitrary_data_as_yaml(data) -> None:
    problems = _check(json.dumps(data).encode())  # JSON is YAML (huge ints, NaN included)
    if not isinstance(data, dict):
        assert problems


@settings(SETTINGS, max_examples=350)
@given(mutated_specs())
def test_mutated_specs(data: dict) -> None:
    _check(json.dumps(data, allow_nan=True).encode())


@pytest.mark.slow
@settings(SETTINGS, max_examples=12)
@given(st.integers(1, 1500), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        body = "".join("  " * i + "- \n" for i in range(min(depth, 300))) + "  " * depth + "1\n"
    else:
        body = opener * depth + "1" + closer * depth
    problems = _check(f"name: x\nmodel: {body}\n".encode())
    if depth > 64:
        assert problems


def test_at_least_a_thousand_documents_were_checked() -> None:
    # Runs after the property tests of this module (pytest keeps file order).
    assert RUNS["count"] >= 1000, RUNS  # 250 + 200 + 250 + 350 (+ 12 deep)


HOSTILE = {
    "binary.yaml": bytes(range(256)) * 4,
    "deep.yaml": b"name: x\nmodel: " + b"[" * 3000 + b"]" * 3000 + b"\n",
    "huge.yaml": b"name: x\ntrain: {epochs: 1" + b"0" * 5000 + b", lr_g: 1e99999}\n",
    "tag.yaml": b'name: !!python/object/apply:os.system ["echo pwned"]\n',
    "laughs.yaml": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n".encode()
            for p, c in zip("abcdef", "bcdefg", strict=True)
        )
        + b"name: x\n"
    ),
    "types.yaml": b"name: [1]\ntrain: {epochs: -3, batch_size: two, betas: 0.5}\nmodel: 7\n",
}


# Through a real interpreter: the document whose parsing depends on the stack depth. The others go
# through the CLI's main() in this process (the same code, without an interpreter start-up each).
IN_SUBPROCESS = {"deep.yaml"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cli_validate_exits_2_without_traceback(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    if name in IN_SUBPROCESS:
        out = subprocess.run(
            [sys.executable, "-m", "sislab.cli.main", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        from sislab.cli.main import main

        code = main(["validate", str(path)])  # an uncaught exception fails the test here
        captured = capsys.readouterr()
        stdout, stderr = captured.out, captured.err + caplog.text  # logged tracebacks too
    assert code == 2, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = stdout.strip().splitlines()
    assert lines and all(line.startswith(f"{path}:") for line in lines), stdout


def test_yaml_python_tags_are_refused_not_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "tag.yaml"
    path.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    problems = validate_file(path)
    assert problems == [
        f"{path}:1: YAML tags such as tag:yaml.org,2002:python/object/apply:os.system are not allowed in a spec"
    ]
    assert not marker.exists()
