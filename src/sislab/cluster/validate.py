"""Offline structural checks of cluster manifests: KubeRay RayCluster/RayJob against KubeRay's own CRD
schemas (packaged in ``sislab/cluster/schemas``), launcher YAML against Ray's ``ray-schema.json``,
and sislab's own rule that no credential is written in a manifest.

The CRD schemas are OpenAPI v3 with Kubernetes extensions; they are turned into JSON Schema the way
the API server reads them: ``x-kubernetes-int-or-string`` becomes integer-or-string, ``nullable``
admits null, and (as ``kubectl apply --validate=strict``) a field the schema does not name is an
error rather than silently pruned, unless ``x-kubernetes-preserve-unknown-fields`` allows it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from sislab.cluster.jobs import SECRET_NAME
from sislab.errors import ClusterError

CRD_SCHEMAS = {"RayCluster": "raycluster.v1.json", "RayJob": "rayjob.v1.json"}
KUBERAY_API_VERSION = "ray.io/v1"
MAX_PROBLEMS = 50  # enough to fix a file; the rest are usually consequences


def structural(schema: Any) -> Any:
    """JSON Schema for one OpenAPI v3 (CRD) schema node, recursively."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: structural(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a KubeRay kind (``RayCluster`` or ``RayJob``, API version v1)."""
    text = resources.files("sislab.cluster").joinpath("schemas", CRD_SCHEMAS[kind]).read_text()
    return structural(json.loads(text))


@functools.cache
def launcher_schema() -> dict[str, Any]:
    """Ray's own schema of cluster-launcher YAML (shipped with Ray)."""
    import ray

    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def _schema_problems(document: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    from jsonschema import Draft7Validator  # a dependency of Ray itself

    problems = []
    for error in sorted(Draft7Validator(schema).iter_errors(document), key=str):
        path = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"{where}: {path}: {error.message}")
    return problems


def secret_problems(document: Any, where: str, path: str = "") -> list[str]:
    """Environment entries that hold a credential's value instead of a ``valueFrom`` reference."""
    problems = []
    if isinstance(document, dict):
        name = document.get("name")
        if isinstance(name, str) and SECRET_NAME.search(name) and "value" in document:
            problems.append(
                f"{where}: {path}: {name} has a literal value; use valueFrom.secretKeyRef"
            )
        for key, value in document.items():
            problems += secret_problems(value, where, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            problems += secret_problems(value, where, f"{path}[{i}]")
    return problems


def check_document(document: Any, where: str) -> list[str]:
    """Problems of one YAML document (empty: valid).

    Args:
        document: Parsed YAML.
        where: File and document index, for messages.
    """
    if not isinstance(document, dict):
        return [f"{where}: not a mapping"]
    kind = document.get("kind")
    if kind in CRD_SCHEMAS:
        problems = []
        if document.get("apiVersion") != KUBERAY_API_VERSION:
            problems.append(
                f"{where}: apiVersion: {document.get('apiVersion')!r}, expected "
                f"{KUBERAY_API_VERSION!r} (the schema sislab checks against)"
            )
        if not (document.get("metadata") or {}).get("name"):
            problems.append(f"{where}: metadata.name: required")
        problems += _schema_problems(document, crd_schema(kind), where)
    elif kind is None and "provider" in document:
        problems = _schema_problems(document, launcher_schema(), where)
    elif kind is None:
        return [f"{where}: neither a Kubernetes object (kind) nor a launcher config (provider)"]
    else:
        problems = []  # Secrets, ConfigMaps and Services are not sislab's to check
    return problems + secret_problems(document, where)


def validate_file(path: Path) -> list[str]:
    """Problems of every document in a manifest file (empty: valid).

    Raises:
        ClusterError: The file is missing or is not YAML.
    """
    try:
        documents = list(YAML(typ="safe").load_all(path.read_text()))
    except OSError as err:
        raise ClusterError(f"cannot read {path}: {err}") from None
    except YAMLError as err:
        raise ClusterError(f"{path} is not valid YAML: {err}") from None
    documents = [d for d in documents if d is not None]
    if not documents:
        return [f"{path}: empty"]
    problems = []
    for i, document in enumerate(documents):
        where = str(path) if len(documents) == 1 else f"{path}[{i}]"
        problems += check_document(document, where)
    return problems[:MAX_PROBLEMS]
