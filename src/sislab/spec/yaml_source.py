"""Reading a spec file: YAML text into plain Python data plus the line of every key and list item.

ruamel.yaml's round-trip loader keeps positions (``lc``) and never constructs Python objects from
tags; anything that is not plain YAML data (tags, binary, dates) is reported rather than passed on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

Path = tuple[Any, ...]
# Bounds on what a spec may hold, so that hostile files end as problems, not as a RecursionError
# or an exponential alias expansion: real specs nest < 10 levels and hold a few hundred values.
MAX_DEPTH = 64
MAX_VALUES = 100_000


class YamlSourceError(ValueError):
    """The text is not a usable spec document.

    Args:
        line: 1-based line of the problem.
        message: What is wrong, one line.
    """

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")

    def __reduce__(self):
        return (type(self), (self.line, self.message))


@dataclass(frozen=True)
class YamlDocument:
    """A parsed spec file.

    Args:
        data: The top-level mapping as plain dicts, lists and scalars.
        positions: Field path (keys and list indices) -> (line, column), both 1-based; ``()`` is
            the document itself at (1, 1).
    """

    data: dict[str, Any]
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of ``path``, or of its nearest ancestor that has one (the document: line 1)."""
        for end in range(len(path), -1, -1):
            position = self.positions.get(tuple(path[:end]))
            if position is not None:
                return position[0]
        return 1


def parse_yaml(text: str | bytes) -> YamlDocument:
    """Parse the text of a spec file.

    Args:
        text: The file's content; bytes must be UTF-8.

    Returns:
        The plain data and the positions of its keys and list items.

    Raises:
        YamlSourceError: Not UTF-8, not YAML (tabs, syntax, duplicate keys), empty, a top level that
            is not a mapping, or values that are not plain data (tags, binary, dates).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[: exc.start].count(b"\n") + 1
            raise YamlSourceError(
                line, f"not a UTF-8 text file (byte 0x{text[exc.start]:02x}); is it YAML?"
            ) from None
    yaml = YAML(typ="rt")  # round-trip: positions kept, no Python objects built from tags
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if "\t" in problem or "\\t" in problem:
            problem += " (tabs cannot indent YAML; use spaces)"
        raise YamlSourceError(line, f"not valid YAML: {_one_line(problem)}") from None
    except RecursionError:
        raise YamlSourceError(
            1, f"not valid YAML for a spec: nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (Python's int limit)
        raise YamlSourceError(1, f"not valid YAML for a spec: {_one_line(str(exc))}") from None
    except YAMLError as exc:  # ReaderError: control characters; position is a character index
        position = getattr(exc, "position", 0) or 0
        line = text[:position].count("\n") + 1
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable text"
        raise YamlSourceError(line, f"not valid YAML: {reason}") from None
    if root is None:
        raise YamlSourceError(1, "the file is empty; a spec needs at least 'name: <experiment>'")
    if not isinstance(root, CommentedMap):
        raise YamlSourceError(
            1,
            f"the top level must be a mapping of sections (name, method, dataset, ...), "
            f"not {_kind(root)}",
        )
    positions: dict[Path, tuple[int, int]] = {(): (1, 1)}
    data = _plain(root, (), positions)
    return YamlDocument(data=data, positions=positions)


def _plain(node: Any, path: Path, positions: dict[Path, tuple[int, int]]) -> Any:
    # Round-trip types (CommentedMap, ScalarFloat, ...) become the built-in types they subclass.
    if len(path) > MAX_DEPTH:
        raise YamlSourceError(_line(positions, path), f"nested deeper than {MAX_DEPTH} levels")
    if len(positions) > MAX_VALUES:  # aliases of aliases expand exponentially ("billion laughs")
        raise YamlSourceError(
            _line(positions, path), f"more than {MAX_VALUES} values (after expanding aliases)"
        )
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar) or (isinstance(node, CommentedMap | CommentedSeq) and tag):
        raise YamlSourceError(
            _line(positions, path), f"YAML tags such as {tag} are not allowed in a spec"
        )
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            key_line, key_col = node.lc.key(key)
            child = (*path, _plain_key(key, key_line + 1))
            positions[child] = (key_line + 1, key_col + 1)
            out[child[-1]] = _plain(value, child, positions)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for index, value in enumerate(node):
            item_line, item_col = node.lc.item(index)
            positions[(*path, index)] = (item_line + 1, item_col + 1)
            out_list.append(_plain(value, (*path, index), positions))
        return out_list
    if node is None or isinstance(node, bool):
        return node
    for plain_type in (int, float, str):
        if isinstance(node, plain_type):
            return plain_type(node)
    if isinstance(node, datetime.date):
        hint = "dates are not spec values; quote it to make it a string"
    else:
        hint = f"{_kind(node)} values are not allowed in a spec"
    raise YamlSourceError(_line(positions, path), hint)


def _plain_key(key: Any, line: int) -> Any:
    if key is None or isinstance(key, bool):
        return key
    for plain_type in (int, float, str):
        if isinstance(key, plain_type):
            return plain_type(key)
    raise YamlSourceError(line, "mapping keys must be plain scalars (field names)")


def _line(positions: dict[Path, tuple[int, int]], path: Path) -> int:
    return positions.get(path, (1, 1))[0]


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
