"""Reading a campaign file: YAML into plain dicts and lists that remember the line of every key and
item, so that a problem in the campaign can be reported as ``file:line: field: what is wrong``.

``load(path)`` returns the document and a ``Lines`` index; ``Lines.of(path_tuple)`` gives the line
of a field such as ``("templates", "control", "sms")`` (the nearest enclosing line when the field
itself is missing). JSON is YAML too, so a JSON campaign reads the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class CampaignFileError(ValueError):
    """A campaign file that cannot be read or parsed (one line, with the file and line)."""


class _Dict(dict):
    line: int = 1
    key_lines: dict


class _List(list):
    line: int = 1
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings and sequences carry the line they start on (1-based) and the
    lines of their keys and items."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Dict:
    loader.flatten_mapping(node)
    out = _Dict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value", key_node.start_mark)
        key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"field {key!r} is given twice", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


class Lines:
    """Lines of the fields of one parsed document (all 0 when the document came from a form)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def of(self, path: tuple) -> int:
        """The line of the field at ``path`` (keys and list indexes), or of its nearest parent."""
        node, line = self.root, getattr(self.root, "line", 0)
        for step in path:
            if isinstance(node, _Dict) and isinstance(step, str) and step in node:
                line = node.key_lines.get(step, line)
                node = node[step]
            elif isinstance(node, _List) and isinstance(step, int) and 0 <= step < len(node):
                line = node.item_lines[step]
                node = node[step]
            else:
                break
        return line


def parse(text: str, name: str = "<campaign>") -> tuple[Any, Lines]:
    """The document in ``text`` and its line index."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CampaignFileError(f"{where}: not valid YAML ({problem})") from exc
    except RecursionError as exc:
        raise CampaignFileError(f"{name}: nested too deeply to be a campaign") from exc
    return document, Lines(document)


def load(path: Path) -> tuple[Any, Lines]:
    """Read and parse a campaign file (YAML or JSON)."""
    if not path.is_file():
        raise CampaignFileError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CampaignFileError(f"{path}: not UTF-8 text (byte {exc.start}); save the campaign as UTF-8") from exc
    except OSError as exc:
        raise CampaignFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    return parse(text, str(path))
