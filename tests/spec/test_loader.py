"""Loading spec files: every problem at once, as FILE:LINE: field: message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sislab.errors import SpecError
from sislab.spec import Spec, load_spec, spec_from_dict, validate_file
from sislab.spec.loader import spec_json_schema


def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


THREE_MISTAKES = """\
name: demo
method: spade
train:
  epochs: 10
  lr_decay_epochs: 5
  lr_gg: 0.0002
  lr_d: -0.001
  batch_size: 15
resources:
  num_workers: 2
"""


def test_three_mistakes_give_three_lines_at_their_lines(tmp_path):
    path = write(tmp_path, THREE_MISTAKES)
    lines = validate_file(path)
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{path}:6: train.lr_gg: unknown field; did you mean 'lr_g'?")
    assert lines[1] == f"{path}:7: train.lr_d: must be greater than 0 (got -0.001)"
    assert lines[2].startswith(
        f"{path}:8: train.batch_size: train.batch_size=15 is not divisible by "
        "resources.num_workers=2"
    )
    assert "14 or 16" in lines[2]


def test_unknown_key_lists_valid_fields(tmp_path):
    (line,) = validate_file(write(tmp_path, "name: x\neval:\n  evry_epochs: 2\n"))
    assert (
        "eval.evry_epochs: unknown field; did you mean 'every_epochs'? "
        "valid fields: every_epochs, num_grid_samples, metrics, "
    ) in line
    assert ":3: " in line


def test_load_spec_raises_with_all_problem_lines(tmp_path):
    path = write(tmp_path, THREE_MISTAKES)
    with pytest.raises(SpecError, match=r"invalid spec .* \(3 problems\)") as info:
        load_spec(path)
    assert info.value.problems == validate_file(path)
    assert "train.lr_d: must be greater than 0" in str(info.value)


def test_unknown_method_suggests_at_method_line(tmp_path):
    path = write(tmp_path, "name: x\nmodel:\n  ngf: 32\nmethod: spdae\n")
    (line,) = validate_file(path)
    assert line.startswith(f"{path}:4: method: unknown method 'spdae'; did you mean 'spade'")
    assert "registered methods: clade, clade-icpe, groupdnet, oasis, scgan, spade" in line


def test_conflicting_model_method(tmp_path):
    path = write(tmp_path, "name: x\nmethod: spade\nmodel:\n  method: clade\n")
    with pytest.raises(SpecError, match=r":4: model\.method: model\.method 'clade' conflicts"):
        load_spec(path)


def test_wrong_types_and_literals(tmp_path):
    text = (
        "name: x\n"
        "train:\n"
        "  epochs: many\n"
        "  precision: fp64\n"
        "  betas: [0.5, 2]\n"
        "eval: 3\n"
        "model:\n"
        "  spade_kernel: 4\n"
    )
    lines = validate_file(write(tmp_path, text))
    body = [line.split(":", 2)[1:] for line in lines]
    assert body == [
        [
            "3",
            " train.epochs: must be a valid integer, unable to parse string as an integer "
            "(got 'many')",
        ],
        ["4", " train.precision: must be one of 'fp32', 'bf16', 'fp16' (got 'fp64')"],
        ["5", " train.betas.1: must be less than 1 (got 2)"],
        ["6", " eval: must be a mapping (got 3)"],
        ["8", " model.spade_kernel: must be one of 1, 3, 5 (got 4)"],
    ]


def test_problem_without_own_line_falls_back_to_parent(tmp_path):
    # The search section has no `space` key; the missing name is reported at line 1.
    path = write(tmp_path, "dataset:\n  flip: true\n")
    assert validate_file(path) == [f"{path}:1: name: required field missing"]


def test_bad_name_pattern(tmp_path):
    (line,) = validate_file(write(tmp_path, "name: -bad name\n"))
    assert ":1: name: must start with a letter or digit" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff", r"spec\.yaml:1: not a UTF-8 text file"),
        (b"", r"spec\.yaml:1: the file is empty"),
        (b"- a\n- b\n", r"spec\.yaml:1: the top level must be a mapping"),
        (b"name: x\ntrain:\n\tepochs: 2\n", r"spec\.yaml:3: not valid YAML: .*tabs"),
        (b"name: x\nname: y\n", r'spec\.yaml:2: not valid YAML: found duplicate key "name"'),
        (b"name: !!python/object/apply:os.system [ls]\n", r"spec\.yaml:1: YAML tags"),
    ],
)
def test_unreadable_documents_give_one_line(tmp_path, content, expected):
    path = write(tmp_path, content)
    (line,) = validate_file(path)
    assert line.startswith(str(path))
    with pytest.raises(SpecError, match=expected):
        load_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read the file"):
        load_spec(tmp_path / "nope.yaml")


def test_defaults_only_spec(tmp_path):
    spec = load_spec(write(tmp_path, "name: x\n"))
    assert spec == Spec(name="x")
    assert spec.method == "spade" and spec.model.method == "spade"
    assert spec.train.batch_size % spec.resources.num_workers == 0
    assert validate_file(tmp_path / "spec.yaml") == []


def test_short_forms(tmp_path):
    spec = load_spec(write(tmp_path, "name: x\nstorage: s3://b/p\nmodel: null\n"))
    assert spec.storage.uri == "s3://b/p"
    assert spec.model.ngf == 64


def test_spec_from_dict():
    spec = spec_from_dict({"name": "x", "model": {"ngf": 32}})
    assert spec.model.ngf == 32
    with pytest.raises(SpecError, match=r"<dict>: model\.ngf: must be greater than 0 \(got 0\)"):
        spec_from_dict({"name": "x", "model": {"ngf": 0}})


def test_json_schema_has_spade_fields():
    schema = json.loads(json.dumps(spec_json_schema()))
    assert schema["required"] == ["name"]
    assert {"ngf", "spade_hidden", "use_vae"} <= set(schema["$defs"]["SpadeConfig"]["properties"])
    assert schema["properties"]["model"]["discriminator"]["propertyName"] == "method"


def test_unknown_keys_that_look_like_type_tags_are_named(tmp_path):
    # pydantic's union tags ('int', 'list[...]') are dropped from locations; a user's own key of
    # that shape must still be reported (the fuzzer found `{'[': null}` crashing the message).
    problems = validate_file(write(tmp_path, "name: x\n'[': null\nmodel: {int: 3}\n"))
    assert any(":2: [: unknown field" in p for p in problems), problems
    assert any(":3: model.int: unknown field" in p for p in problems), problems


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("  batch_size: 16\n  micro_batch_size: 3\n",
         "train.micro_batch_size: train.batch_size=16 is not divisible by resources.num_workers x "
         "train.micro_batch_size = 2 x 3"),
        ("  batch_size: 12\n  grad_accumulation: 4\n",
         "train.grad_accumulation: train.batch_size=12 is not divisible by resources.num_workers "
         "x train.grad_accumulation = 2 x 4"),
        ("  batch_size: 16\n  grad_accumulation: 2\n  micro_batch_size: 4\n",
         "train.grad_accumulation: train.grad_accumulation=2 and train.micro_batch_size=4 both"),
        ("  batch_size: 16\n  micro_batch_size: auto\n",
         "train.micro_batch_size: train.micro_batch_size: auto on CPU workers fits the "
         "micro-batch into resources.memory_per_worker_mb, which is not set"),
    ],
)  # fmt: skip
def test_micro_batches_must_split_each_workers_batch(tmp_path, train: str, message: str):
    text = f"name: x\nmethod: spade\ntrain:\n{train}resources:\n  num_workers: 2\n"
    path = write(tmp_path, text)
    (line,) = validate_file(path)
    field = message.split(":")[0]
    row = 1 + text.splitlines().index(
        next(x for x in text.splitlines() if field.split(".")[1] in x)
    )
    assert line.startswith(f"{path}:{row}: {message}"), line


def test_micro_batches_that_split_the_batch_are_valid(tmp_path):
    for train in ("  batch_size: 16\n  micro_batch_size: 4\n",
                  "  batch_size: 16\n  grad_accumulation: 8\n"):  # fmt: skip
        text = f"name: x\nmethod: spade\ntrain:\n{train}resources:\n  num_workers: 2\n"
        assert validate_file(write(tmp_path, text)) == []
    spec = spec_from_dict(
        {"name": "x", "train": {"batch_size": 16, "micro_batch_size": 2},
         "resources": {"num_workers": 2}}
    )  # fmt: skip
    from sislab.spec.models import accumulation_steps

    assert accumulation_steps(spec.train, spec.resources.num_workers) == 4
