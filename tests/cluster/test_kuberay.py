"""Generated KubeRay manifests parse, carry the fields a lab needs, validate, and hold no secret."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from sislab.cli import cluster as cluster_cli
from sislab.cluster.kuberay import ClusterOptions, kuberay_manifest
from sislab.cluster.validate import validate_file

SECRET_VALUE = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cluster_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def _containers(cluster_spec: dict) -> list[dict]:
    head = cluster_spec["headGroupSpec"]["template"]["spec"]["containers"]
    workers = [
        c for g in cluster_spec["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]
    ]
    return head + workers


@pytest.mark.parametrize("job", [False, True])
def test_init_writes_valid_commented_manifest_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job: bool
) -> None:
    # A secret in the local environment must not leak into the manifest.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)
    out = tmp_path / "ray.yaml"
    argv = ["cluster", "init", "--kind", "kuberay", "--out", str(out), "--min-replicas", "1",
            "--max-replicas", "3", "--mlflow-uri", "http://mlflow.lab:5000",
            "--s3-endpoint", "http://minio.lab:9000", "--accelerator", "NVIDIA-L4"]  # fmt: skip
    assert _cli(argv + (["--job"] if job else [])) == 0

    text = out.read_text()
    assert SECRET_VALUE not in text
    assert "# " in text  # commented for the lab
    doc = YAML(typ="safe").load(text)
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == ("RayJob" if job else "RayCluster")
    spec = doc["spec"]["rayClusterSpec"] if job else doc["spec"]
    if job:
        assert "--address auto" in doc["spec"]["entrypoint"]
    (group,) = spec["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 3)
    assert (
        group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    )
    assert group["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    for container in _containers(spec):
        env = {e["name"]: e for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.lab:5000"
        assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.lab:9000"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in env[key]
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "sislab-s3", "key": key}
    assert validate_file(out) == []


def test_validate_reports_schema_errors_and_literal_secrets(tmp_path: Path) -> None:
    text = kuberay_manifest(ClusterOptions(), "RayCluster")
    text = text.replace("minReplicas: 0", "minReplica: 0").replace("replicas: 0", "replicas: x")
    doc = YAML(typ="safe").load(text)
    worker = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    worker["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET_VALUE})
    bad = tmp_path / "bad.yaml"
    with bad.open("w") as f:
        YAML(typ="safe").dump(doc, f)

    problems = "\n".join(validate_file(bad))

    assert "'minReplicas' is a required property" in problems
    assert "'minReplica' was unexpected" in problems  # strict, like kubectl --validate=strict
    assert "replicas: 'x' is not of type 'integer'" in problems
    assert "AWS_SECRET_ACCESS_KEY has a literal value" in problems
    assert _cli(["cluster", "validate", str(bad)]) == 1


def test_validate_rejects_wrong_api_version_and_unknown_documents(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: ray.io/v2\nkind: RayCluster\nmetadata: {name: x}\nspec: {}\n---\nfoo: 1\n"
    )
    problems = "\n".join(validate_file(path))
    assert "expected 'ray.io/v1'" in problems
    assert "'headGroupSpec' is a required property" in problems
    assert "neither a Kubernetes object" in problems


@pytest.mark.parametrize("kind", ["aws", "gcp"])
def test_launcher_yaml_validates_against_rays_schema(tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.yaml"
    assert _cli(["cluster", "init", "--kind", kind, "--out", str(out), "--max-replicas", "2"]) == 0
    doc = YAML(typ="safe").load(out.read_text())
    assert doc["provider"]["type"] == kind
    assert doc["available_node_types"]["gpu"]["max_workers"] == 2
    doc["available_node_types"]["gpu"].pop("node_config")
    broken = tmp_path / "broken.yaml"
    with broken.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    assert any("'node_config' is a required property" in p for p in validate_file(broken))
