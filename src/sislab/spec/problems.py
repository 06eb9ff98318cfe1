"""Turning pydantic errors into readable ``(field path, message)`` problems.

Also answers "which fields exist at this path?" for did-you-mean hints, walking the spec models
(and, under ``model``, the config of the spec's method).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from sislab.models.registry import METHODS

Path = tuple[Any, ...]
Problem = tuple[Path, str]


def dotted(path: Path) -> str:
    """``("train", "betas", 0)`` -> ``"train.betas.0"``; the empty path is ``"<spec>"``."""
    return ".".join(str(p) for p in path) if path else "<spec>"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    # Unwrap Optional / Annotated to the section model, if the field holds one.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _model_of(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def section_model(spec_cls: type[BaseModel], path: Path, method: str) -> type[BaseModel] | None:
    """The pydantic model holding the fields at ``path`` (``()``: the spec), or None.

    Args:
        spec_cls: The ``Spec`` class.
        path: Field names from the top.
        method: The spec's method; ``("model",)`` resolves to its config class.
    """
    current: type[BaseModel] | None = spec_cls
    for depth, part in enumerate(path):
        if current is None or part not in current.model_fields:
            return None
        if depth == 0 and part == "model":
            current = METHODS[method].config if method in METHODS else None
            continue
        current = _model_of(current.model_fields[part].annotation)
    return current


def field_names(spec_cls: type[BaseModel], path: Path, method: str) -> list[str]:
    """Names of the fields at ``path``; empty when ``path`` is not a section."""
    model = section_model(spec_cls, path, method)
    return list(model.model_fields) if model is not None else []


def did_you_mean(word: str, candidates: list[str]) -> str:
    """``"did you mean 'x'? "`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def clean_loc(loc: tuple, method: str, user_key_last: bool = False) -> Path:
    """Drop the union tags pydantic puts into locations (``model.spade.ngf`` -> ``model.ngf``).

    With ``user_key_last`` (unknown-field errors) the last element is the user's own key, kept
    even when it looks like a tag (a key ``[`` or ``int`` must still be named in the message).
    """
    path = list(loc)
    last = [path.pop()] if user_key_last and path else []
    if len(path) >= 2 and path[0] == "model" and path[1] in METHODS:
        del path[1]
    # Smart-mode union members appear as type names ('int', 'function-after[...]'); drop them.
    kept = [p for p in path if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
    return (*kept, *last)


_TYPE_TAGS = {"int", "float", "str", "bool", "list", "dict", "tuple", "none", "is-instance"}
_NO_INPUT_ECHO = {"missing", "extra_forbidden", "value_error", "assertion_error"}


def readable(error: dict, spec_cls: type[BaseModel], path: Path, method: str) -> str:
    """One readable message for a pydantic error dict."""
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = field_names(spec_cls, path[:-1], method)
        hint = did_you_mean(str(path[-1]), valid)
        listing = f"valid fields: {', '.join(valid)}" if valid else "this section takes no fields"
        return f"unknown field; {hint}{listing}"
    if kind == "missing":
        return "required field missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected.replace(' or ', ', ')} (got {error['input']!r})"
    if kind == "string_pattern_mismatch" and path == ("name",):
        return (
            "must start with a letter or digit and contain only letters, digits, '.', '_' "
            f"and '-' (got {error['input']!r})"
        )
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = msg.replace("Input should be", "must be").replace("Input ", "value ")
    msg = re.sub(r"a valid dictionary or instance of \w+", "a mapping", msg)
    msg = msg.replace("a valid tuple", "a list").replace("a valid list", "a list")
    if kind not in _NO_INPUT_ECHO and _is_scalar(error.get("input")):
        msg += f" (got {error['input']!r})"
    return msg


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def validation_problems(
    exc: ValidationError, spec_cls: type[BaseModel], method: str
) -> list[Problem]:
    """All problems of a ``ValidationError`` raised by ``spec_cls``, one per field path.

    Errors of the same path (e.g. the members of a union) are joined with ``" or "``.
    """
    by_path: dict[Path, list[str]] = {}
    for error in exc.errors():
        path = clean_loc(error["loc"], method, error["type"] == "extra_forbidden")
        message = readable(error, spec_cls, path, method)
        messages = by_path.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    return [(path, " or ".join(messages)) for path, messages in by_path.items()]
