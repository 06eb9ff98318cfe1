"""The preflight: a spec that validates can run (networks, dataset, resources), located in the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sislab.cli.main import main
from sislab.errors import SpecError
from sislab.orchestrator.preflight import check_before_run, preflight
from sislab.orchestrator.resource_wait import pending_line
from sislab.spec.loader import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
METHODS = ["spade", "scgan", "clade", "clade-icpe", "oasis", "va-spade", "va-clade", "va-oasis",
           "groupdnet"]  # fmt: skip

NINE_AT_64 = """\
name: nine-methods
dataset:
  uri: synthetic://shapes?size=64&classes=8&num=16
  image_size: [64, 64]
train:
  batch_size: 4
resources:
  num_workers: 2
  cpus_per_worker: 0.4
search:
  methods:
""" + "".join(f"    {m}: {{}}\n" for m in METHODS)


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_nine_methods_at_64_names_va_oasis_and_groupdnet(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _write(tmp_path, NINE_AT_64)
    assert main(["validate", str(path), "--num-cpus", "2"]) == 2
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith(f"{path}:")]
    assert len(problems) == 2, out
    va_oasis, groupdnet = sorted(problems, key=lambda line: "groupdnet" in line)
    assert re.match(
        rf"{re.escape(str(path))}:4: dataset.image_size: va-oasis needs image_size >= 128x128; "
        r"96x96 fails too \(at 64x64 the generator forward of the training step fails: .*Kernel "
        r"size can't be greater than actual input size\)\. Fix: raise dataset.image_size to "
        r"\[128, 128\]$",
        va_oasis,
    ), va_oasis
    assert re.match(
        rf"{re.escape(str(path))}:4: dataset.image_size: groupdnet needs image_size >= 128x128 "
        r"at num_upsampling_layers more; 96x96 fails too \(at 64x64 the encoder forward of the "
        r"training step fails: Expected more than 1 spatial element when training.*\)\. Fix: "
        r"raise dataset.image_size to \[128, 128\] or set model.num_upsampling_layers: normal$",
        groupdnet,
    ), groupdnet
    assert "preflight: groupdnet: preset deepfashion (auto: the dataset has 8 classes)" in out


def test_all_methods_example_validates_ok(capsys: pytest.CaptureFixture) -> None:
    spec = load_spec(EXAMPLES / "all_methods.yaml")
    assert sorted(spec.search.methods) == sorted(METHODS)
    assert main(["validate", str(EXAMPLES / "all_methods.yaml"), "--num-cpus", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ok"


def test_a_100_configuration_grid_checks_each_distinct_network_once(tmp_path: Path) -> None:
    lrs = [f"{1 + i}.0e-4" for i in range(10)]
    path = _write(
        tmp_path,
        "name: grid\nmodel: {ngf: 8, ndf: 8}\ntrain: {batch_size: 2}\n"
        "resources: {num_workers: 1, cpus_per_worker: 0.5}\n"
        "search:\n  space:\n"
        f"    train.lr_g: {{grid: [{', '.join(lrs)}]}}\n"
        f"    train.lr_d: {{grid: [{', '.join(lrs[:5])}]}}\n"
        "    dataset.image_size: {grid: [[64, 64], [128, 128]]}\n",
    )
    report = preflight(load_spec(path))
    assert report.problems == []
    assert report.num_model_checks == 2  # 100 configurations, two image sizes


def test_nonexistent_dataset_is_a_problem_at_dataset_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _write(
        tmp_path,
        "name: nodata\ndataset:\n  uri: /nonexistent/dataset\n"
        "resources: {num_workers: 1, cpus_per_worker: 0.5}\n",
    )
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{path}:3: dataset.uri: cannot read /nonexistent/dataset/dataset.json")
    assert "fix: point dataset.uri at a folder written by `sislab data convert`" in line


def test_resources_that_can_never_be_granted_are_refused(tmp_path: Path) -> None:
    text = "name: big\ntrain: {batch_size: 64}\nresources:\n  num_workers: 64\n"
    path = _write(tmp_path, text)
    with pytest.raises(
        SpecError,
        match=r"spec.yaml:4: resources.num_workers: one trial needs 64.1 CPUs \(resources"
        r".num_workers 64 x resources.cpus_per_worker 1 \+ 0.1 for its driver\) but a local Ray "
        r"on this machine \(--num-cpus 2; no --address given\) has 2: no trial could ever start"
        r"\. Fix: lower resources.num_workers to at most 1",
    ):
        check_before_run(load_spec(path), path, num_cpus=2, echo=lambda line: None)
    # An autoscaling cluster may grow: nothing refused up front.
    scaling = _write(tmp_path, text + "  autoscaling: true\n", "scaling.yaml")
    check_before_run(load_spec(scaling), scaling, num_cpus=2, echo=lambda line: None)


def test_pending_line_names_what_is_missing() -> None:
    demand = {"CPU": 64.1, "GPU": 2.0}
    assert pending_line(demand, {"CPU": 4.0, "GPU": 0.0}, 40.2) == (
        "waiting for resources: 60.1 CPU, 2 GPU pending for 40 s"
    )
    assert pending_line(demand, {"CPU": 70.0, "GPU": 2.0}, 5.0) is None


def test_unreachable_s3_dataset_names_the_uri_and_offline_skips_it(tmp_path: Path) -> None:
    from sislab.errors import DataError
    from sislab.orchestrator.preflight_data import dataset_facts

    path = _write(
        tmp_path,
        "name: s3data\ndataset:\n  uri: s3://nowhere/ds\n"
        "  endpoint_override: http://127.0.0.1:9\n"  # discard port: nothing listens
        "resources: {num_workers: 1, cpus_per_worker: 0.5}\n",
    )
    spec = load_spec(path)
    with pytest.raises(DataError, match=r"s3://nowhere/ds"):
        dataset_facts(spec, timeout_s=3.0)
    report = preflight(spec, offline=True)
    assert report.problems == []
    assert report.notes == [
        "dataset: s3://nowhere/ds not read (--offline): networks and splits unchecked"
    ]


def test_presets_follow_a_cityscapes_named_dataset_and_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.datasets import trees

    from sislab.datasets.converters import FORMATS, convert

    trees.cityscapes(tmp_path / "src")
    convert(FORMATS["cityscapes"], tmp_path / "src", str(tmp_path / "ds"))
    path = _write(
        tmp_path,
        f"name: city\nmethod: oasis\ndataset:\n  uri: {tmp_path / 'ds'}\n"
        "  image_size: [64, 128]\nmodel: {ngf: 8, ndf: 8, ema_decay: 0.99}\n"
        "train: {batch_size: 1}\nresources: {num_workers: 1, cpus_per_worker: 0.5}\n"
        "search:\n  methods:\n    oasis: {}\n    scgan: {}\n",
    )
    lines: list[str] = []
    resolved = check_before_run(load_spec(path), path, num_cpus=2, echo=lines.append)
    assert "preflight: oasis: preset cityscapes (auto: the dataset is cityscapes)" in lines
    assert "preflight: scgan: preset cityscapes (auto: the dataset is cityscapes)" in lines
    # The spec the sweep logs: the preset's LabelMix weight, the user's EMA decay.
    model = resolved.model
    assert (model.preset, model.labelmix_weight, model.ema_decay) == ("cityscapes", 5.0, 0.99)
    assert main(["validate", str(path), "--num-cpus", "2"]) == 0
    assert "preflight: oasis: preset cityscapes" in capsys.readouterr().out


def test_a_synthetic_dataset_keeps_the_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: syn\nmethod: oasis\nmodel: {ngf: 8, ndf: 8}\ntrain: {batch_size: 2}\n"
        "resources: {num_workers: 1, cpus_per_worker: 0.5}\n",
    )
    report = preflight(load_spec(path))
    assert report.notes == [
        # OASIS's code never decays its learning rate (the recipe's generic table).
        "oasis: recipe official (generic table, `sislab recipe show oasis`) sets "
        "train.lr_decay_epochs=0",
        "oasis: preset none (auto: the dataset is synthetic, which has no preset: the defaults)",
    ]
    model = report.spec.model
    assert (model.preset, model.labelmix_weight, model.ema_decay) == (None, 10.0, 0.9999)


@pytest.mark.parametrize("method", ["scgan", "oasis"])
def test_models_summary_prints_the_dataset_preset(
    method: str, capsys: pytest.CaptureFixture
) -> None:
    import json

    assert main(["models", "summary", method, "--dataset", "cityscapes", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["preset"] == "cityscapes"
    if method == "scgan":  # the docs' cityscapes preset count (4 norm candidates)
        assert summary["generator_params"] == 58_763_846


def test_a_dataset_of_few_shards_and_its_decoded_size_are_noted(tmp_path: Path) -> None:
    from sislab.datasets.storage import resolve
    from sislab.datasets.synthetic import parse_synthetic_uri
    from sislab.datasets.synthetic_writer import write_synthetic

    params = parse_synthetic_uri("synthetic://shapes?size=16&classes=4&num=40&val=6&seed=0")
    write_synthetic(resolve(str(tmp_path / "ds")), params)  # 128 MB shards: one per split
    text = (
        f"name: few\nmethod: spade\ndataset:\n  uri: {tmp_path / 'ds'}\n  image_size: [16, 16]\n"
        "model: {ngf: 8, ndf: 8}\ntrain: {batch_size: 2}\n"
        "resources: {num_workers: 1, cpus_per_worker: 0.5}\n"
    )
    notes = preflight(load_spec(_write(tmp_path, text))).notes
    assert (
        "dataset: the train split is 1 shard(s): at most 1 task(s) read and decode it at once; "
        "`sislab data convert|synth --shard-mb` writes smaller shards"
    ) in notes
    # (40 + 6) rows x 16 x 16 pixels x (3 image + 1 label + 4 instance) bytes = 0.09 MB.
    assert (
        "dataset: decoded train + val at 16x16 take 0.1 MB; dataset.cache auto keeps them when "
        "the copies of the trials at once take at most 30% of the cluster's object store"
    ) in notes
    off = text.replace("  image_size: [16, 16]\n", "  image_size: [16, 16]\n  cache: off\n")
    assert not [
        n for n in preflight(load_spec(_write(tmp_path, off, "off.yaml"))).notes if "decoded" in n
    ]
