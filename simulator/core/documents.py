"""YAML/JSON documents (config, scenarios) that remember where each value stood.

Errors in a user's document must name the file and the line, so the loader keeps a map from each
value's path (``("rules", 0, "effect")``) to its line, and marshmallow's nested error dicts are
turned into the first failing path and its line.
"""
from __future__ import annotations

import math
import re
import sys
from functools import cache
from typing import Any

from .inputs import MAX_DEPTH, text_ok

MAX_VALUES = 100_000


class DocumentError(ValueError):
    def __init__(self, source: str, line: int | None, message: str):
        self.source, self.line, self.message = source, line, message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")

    def as_dict(self) -> dict:
        return {"error": self.message, "source": self.source, "line": self.line}


@cache
def _yaml():
    """PyYAML and a loader that refuses duplicate keys, imported with the first document (a
    server started without --config or --scenario never reads one)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml, UniqueKeyLoader


def _lines(node, path=(), out=None) -> dict:
    yaml, _ = _yaml()
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _lines(v, path + (key,), out)
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), out)
    return out


def load(text: str | bytes, source: str) -> tuple[Any, dict]:
    """Parse YAML (JSON is YAML); returns the data and a path → line map."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentError(source, None, "not UTF-8 text") from None
    yaml, loader = _yaml()
    try:
        node = yaml.compose(text, Loader=loader)
        if node is not None:
            _check_shape(node, source)
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DocumentError(source, mark.line + 1 if mark else None,
                            f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(source, None, f"malformed YAML: {exc}") from None
    except RecursionError:  # nesting deep enough to exhaust the parser's own recursion
        raise DocumentError(source, None, f"nested deeper than {MAX_DEPTH} levels") from None
    except DocumentError:   # the shape check's
        raise
    except (ValueError, OverflowError):
        # a scalar YAML parsed but cannot build: int() of 5,000 digits, date(2026, 2, 30)
        raise _construct_failure(text, source) from None
    return clean(data, source, _lines(node) if node is not None else {})


def _check_shape(root, source: str) -> None:
    """Refuse nesting and alias expansion that every later walk (validation, merge, the JSON
    answer) would pay for: a few lines of anchors can stand for billions of values."""
    yaml, _ = _yaml()
    stack, seen = [(root, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise DocumentError(source, None, f"more than {MAX_VALUES} values (after expanding aliases)")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if depth > MAX_DEPTH:
                raise DocumentError(source, node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            children = [v for pair in node.value for v in pair] if isinstance(node, yaml.MappingNode) else node.value
            stack.extend((child, depth + 1) for child in children)


def first_error(messages: Any, path: tuple = ()) -> tuple[tuple, str]:
    """The first (path, message) in a marshmallow error dict."""
    if isinstance(messages, dict):
        for key in sorted(messages, key=lambda k: (not isinstance(k, int), str(k))):
            return first_error(messages[key], path + (key,))
    if isinstance(messages, list) and messages:
        if isinstance(messages[0], (dict, list)):
            return first_error(messages[0], path)
        return path, str(messages[0])
    return path, str(messages)


def line_of(lines: dict, path: tuple) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def error_from_validation(source: str, lines: dict, messages: Any, prefix: tuple = ()) -> DocumentError:
    path, message = first_error(messages)
    path = prefix + path
    dotted = ".".join(str(p) for p in path if p != "_schema")
    return DocumentError(source, line_of(lines, path), f"{dotted}: {message}" if dotted else message)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dotted(path: tuple) -> str:
    # a key in the path may be the lone surrogate refused: escaped, or the message cannot be printed
    return ".".join(str(part).encode("utf-8", "backslashreplace").decode("utf-8") for part in path)


def _text(value: str) -> str:
    """``value`` with each UTF-16 surrogate pair joined into its character; ValueError if a
    surrogate is left alone.

    YAML reads the escapes ``\\ud83d\\ude00`` as two separate code points, where JSON (and so
    every JSON encoder that escapes non-ASCII, Python's by default) means one character."""
    if not _SURROGATE.search(value):
        return value
    joined = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if not text_ok(joined):
        raise ValueError("invalid Unicode: a lone surrogate escape (\\ud800-\\udfff) is not text")
    return joined


def clean(data, source: str, lines: dict):
    """Refuse what no later step can carry, wherever it stands in the document, with its line:
    text that is not Unicode (a lone surrogate is stored, then fails the first UTF-8 encode, in
    the dashboard or the state file) and NaN or an infinity (invalid JSON in every listing).
    Returns the data with surrogate pairs joined, and the line map to match."""
    renamed = {}

    def walk(node, path):
        if isinstance(node, str):
            return _text(node)
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError("must be a finite number")
        if isinstance(node, list):
            return [visit(item, path + (i,)) for i, item in enumerate(node)]
        if isinstance(node, dict):
            out = {}
            for key, item in node.items():
                name = visit(key, path + (key,)) if isinstance(key, str) else key
                if name != key:
                    renamed[key] = name
                out[name] = visit(item, path + (key,))
            return out
        return node

    def visit(node, path):
        try:
            return walk(node, path)
        except ValueError as exc:
            if isinstance(exc, DocumentError):
                raise
            dotted = _dotted(path)
            raise DocumentError(source, line_of(lines, path), f"{dotted}: {exc}" if dotted else str(exc)) from None

    data = visit(data, ())
    if renamed:
        lines = {tuple(renamed.get(part, part) if isinstance(part, str) else part for part in path): line
                 for path, line in lines.items()}
    return data, lines


def _construct_failure(text, source: str) -> DocumentError:
    """The scalar PyYAML parsed but could not build (an integer of more digits than ``int()``
    reads, a date that does not exist such as 2026-02-30), as an error naming its path and line."""
    yaml, _ = _yaml()
    limit = sys.get_int_max_str_digits()
    builder = yaml.SafeLoader("")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    stack, seen = [(root, ())], set()
    while stack:
        node, path = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                builder.construct_object(node)
            except (ValueError, OverflowError) as exc:
                if node.tag.endswith(":int"):
                    reason = f"a number of more than {limit} digits"
                elif node.tag.endswith(":timestamp"):
                    reason = f"not a date or timestamp ({exc}); quote it if it is text"
                else:
                    reason = f"cannot be read: {exc}"
                dotted = _dotted(path)
                return DocumentError(source, node.start_mark.line + 1, f"{dotted}: {reason}" if dotted else reason)
        elif isinstance(node, yaml.MappingNode):
            # pushed last first, so the first mistake in the text is the one reported
            for key, value in reversed(node.value):
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                stack.extend([(value, path + (name,)), (key, path + (name,))])
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (i,)) for i, item in reversed(list(enumerate(node.value))))
    return DocumentError(source, None, "a value that cannot be read")
