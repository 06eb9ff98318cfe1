"""The spec: pydantic models of the YAML file, loading with file/line errors, overrides.

Names are imported lazily (PEP 562): ``sislab.spec.models`` is imported by the method configs
that ``sislab.spec.spec`` itself imports through the registry, so this package must not import
``spec.py`` eagerly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sislab.spec.loader import load_spec, spec_from_dict, spec_json_schema, validate_file
    from sislab.spec.overrides import apply_overrides, resolve
    from sislab.spec.spec import Spec

__all__ = [
    "Spec",
    "apply_overrides",
    "load_spec",
    "resolve",
    "spec_from_dict",
    "spec_json_schema",
    "validate_file",
]

_WHERE = {
    "Spec": "sislab.spec.spec",
    "load_spec": "sislab.spec.loader",
    "validate_file": "sislab.spec.loader",
    "spec_from_dict": "sislab.spec.loader",
    "spec_json_schema": "sislab.spec.loader",
    "resolve": "sislab.spec.overrides",
    "apply_overrides": "sislab.spec.overrides",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sislab.spec' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
