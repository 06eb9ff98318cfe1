"""Loading a spec: file -> YAML data -> ``Spec``; every problem as ``FILE:LINE: field: message``.

All problems are reported at once: after pydantic's errors, the offending values are dropped (so
defaults take their place) and the cross-field checks run on what is left, skipping any check that
involves a dropped value.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path as FilePath
from typing import Any

from pydantic import ValidationError

from sislab.errors import SpecError
from sislab.spec.checks import check_spec
from sislab.spec.problems import Path, Problem, dotted, validation_problems
from sislab.spec.spec import DEFAULT_METHOD, Spec
from sislab.spec.yaml_source import YamlDocument, YamlSourceError, parse_yaml

logger = logging.getLogger(__name__)

# Rounds of "drop what failed, validate again" before giving up on the cross-field checks; each
# round removes at least one value, and nested errors rarely need more than two.
MAX_REPAIR_ROUNDS = 8


def _method_of(data: dict[str, Any]) -> str:
    method = data.get("method", DEFAULT_METHOD)
    return method if isinstance(method, str) else DEFAULT_METHOD


def _drop(data: dict[str, Any], path: Path) -> bool:
    # Delete the deepest mapping entry on `path`, so that its default applies.
    for end in range(len(path), 0, -1):
        parent: Any = data
        for part in path[: end - 1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[end - 1] in parent:
            del parent[path[end - 1]]
            return True
    return False


def collect_problems(data: Any) -> tuple[Spec | None, list[Problem]]:
    """Validate spec data and run the cross-field checks.

    Args:
        data: The spec as nested plain data.

    Returns:
        The spec (None when invalid) and every problem as ``(field path, message)``.
    """
    if not isinstance(data, dict):
        return None, [((), f"a spec is a mapping of sections, not {type(data).__name__}")]
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, Spec, _method_of(data))
    else:
        return spec, check_spec(spec)
    skip = {path for path, _ in problems}
    if ("method",) in skip:
        skip.add(("model",))  # checked against the wrong method otherwise
    repaired = copy.deepcopy(data)
    pending = set(skip)
    for _ in range(MAX_REPAIR_ROUNDS):
        progressed = any([_drop(repaired, path) for path in sorted(pending, key=dotted)])
        if "name" not in repaired:
            repaired["name"] = "unnamed"  # the one required field
            progressed = True
        if not progressed:
            break
        try:
            partial = Spec.model_validate(repaired)
        except ValidationError as exc:
            pending = {path for path, _ in validation_problems(exc, Spec, _method_of(repaired))}
            skip |= pending
            continue
        problems += check_spec(partial, frozenset(skip))
        break
    else:
        logger.debug("cross-field checks skipped: the spec did not validate after repairs")
    return None, problems


def _format(source: str, problems: list[Problem], doc: YamlDocument | None) -> list[str]:
    located = [(doc.line_of(path) if doc else 0, path, message) for path, message in problems]
    located.sort(key=lambda item: item[0])
    if doc is None:
        return [f"{source}: {dotted(path)}: {message}" for _, path, message in located]
    return [f"{source}:{line}: {dotted(path)}: {message}" for line, path, message in located]


def _check_file(path: str | FilePath) -> tuple[Spec | None, list[str]]:
    source = str(path)
    try:
        raw = FilePath(path).read_bytes()
    except OSError as exc:
        return None, [f"{source}: cannot read the file: {exc.strerror or exc}"]
    try:
        doc = parse_yaml(raw)
    except YamlSourceError as exc:
        return None, [f"{source}:{exc.line}: {exc.message}"]
    spec, problems = collect_problems(doc.data)
    return spec, _format(source, problems, doc)


def validate_file(path: str | FilePath) -> list[str]:
    """Every problem of a spec file, one line each, sorted by line (empty: the spec is valid).

    Args:
        path: The YAML spec file.

    Returns:
        Lines ``FILE:LINE: field.path: message``.
    """
    return _check_file(path)[1]


def locate_problems(path: str | FilePath, problems: list[Problem]) -> list[str]:
    """``FILE:LINE: field.path: message`` lines for problems found outside this module (the
    preflight), located in the spec file at ``path`` and sorted by line.

    Args:
        path: The YAML spec file the problems' field paths refer to.
        problems: ``(field path, message)`` pairs.
    """
    try:
        doc = parse_yaml(FilePath(path).read_bytes())
    except (OSError, YamlSourceError):
        doc = None
    return _format(str(path), problems, doc)


def _raise(source: str, lines: list[str]) -> None:
    count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
    raise SpecError(
        f"invalid spec {source} ({count}):\n" + "\n".join(f"  {line}" for line in lines),
        fix="Correct the fields named above; `sislab validate` lists them, `sislab schema` "
        "shows every field.",
        problems=lines,
    )


def load_spec(path: str | FilePath) -> Spec:
    """Load and validate a spec file.

    Args:
        path: The YAML spec file.

    Returns:
        The validated, frozen spec.

    Raises:
        SpecError: The file is unreadable or invalid; ``problems`` holds the lines of
            :func:`validate_file`.
    """
    spec, lines = _check_file(path)
    if spec is None or lines:
        _raise(str(path), lines)
    return spec


def spec_from_dict(data: dict[str, Any], source: str = "<dict>") -> Spec:
    """Validate spec data that did not come from a file (tests, the Python API).

    Args:
        data: The spec as nested plain data.
        source: Name used in the problem lines ``SOURCE: field.path: message``.

    Raises:
        SpecError: The data is invalid.
    """
    spec, problems = collect_problems(data)
    if spec is None or problems:
        _raise(source, _format(source, problems, None))
    return spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of the spec (``sislab schema``), with every method's ``model`` fields."""
    return Spec.model_json_schema()
