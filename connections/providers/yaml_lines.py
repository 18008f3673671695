"""Reading YAML with the line each value is on, and checking a mapping's fields without raising.

vendor_files.py builds vendor definitions on these: every problem is a `Problem` with the line
(from yaml's marks) and the dotted field it is about. Anchors and aliases are refused (a
billion-laughs file costs nothing, and a field is where it is written); duplicate keys are
reported (safe_load would keep the last one silently); unknown fields get a "did you mean".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml

MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based; None when the whole file is concerned
    field: str  # dotted path ("auth.scheme", "tests[0].path"); "" for the file itself
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}




class Lined:
    """A value with the line it starts on (1-based), for error messages."""

    __slots__ = ("value", "line")

    def __init__(self, value: Any, line: int):
        self.value, self.line = value, line


def lined(node: yaml.Node, problems: list[Problem], path: str) -> Lined:
    """The node tree as plain values wrapped in Lined, duplicate keys reported."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Lined] = {}
        keys: dict[str, Lined] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), key_node) \
                if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                problems.append(Problem(key_node.start_mark.line + 1, path, "keys must be plain names"))
                continue
            sub = f"{path}.{key}" if path else key
            if key in out:
                problems.append(Problem(key_node.start_mark.line + 1, sub,
                                        f"given twice (first on line {keys[key].line})"))
                continue
            keys[key] = Lined(key, key_node.start_mark.line + 1)
            out[key] = lined(value_node, problems, sub)
        return Lined(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Lined([lined(item, problems, f"{path}[{i}]") for i, item in enumerate(node.value)], line)
    loader = yaml.SafeLoader("")
    try:
        return Lined(loader.construct_object(node, deep=True), line)
    except yaml.YAMLError as exc:
        return Lined(_Bad(str(getattr(exc, "problem", exc))), line)


class _Bad:
    def __init__(self, why: str):
        self.why = why


def plain(node: Lined) -> Any:
    v = node.value
    if isinstance(v, dict):
        return {k: plain(n) for k, n in v.items()}
    if isinstance(v, list):
        return [plain(n) for n in v]
    return v


def parse_yaml(text: str) -> tuple[Lined | None, list[Problem]]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        return None, [Problem(None, "", f"the file is larger than {MAX_FILE_BYTES // 1024} KB")]
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                return None, [Problem(event.start_mark.line + 1, "", "anchors and aliases (&, *) are not allowed")]
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return None, [Problem(mark.line + 1 if mark else None, "", f"not valid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [Problem(None, "", f"not valid YAML: {exc}")]
    if root is None:
        return None, [Problem(None, "", "the file is empty")]
    problems: list[Problem] = []
    tree = lined(root, problems, "")
    if not isinstance(tree.value, dict):
        problems.append(Problem(tree.line, "", "the file must be a mapping of fields (key: ..., name: ...)"))
    return tree, problems


# ----------------------------------------------------------------------------- checking fields

class Fields:
    """Reads fields of one mapping, noting problems with their lines instead of raising."""

    def __init__(self, problems: list[Problem], node: Lined, path: str, known: tuple[str, ...]):
        self.problems, self.node, self.path = problems, node, path
        self.map: dict[str, Lined] = node.value if isinstance(node.value, dict) else {}
        if not isinstance(node.value, dict):
            self.fail(None, "must be a mapping of fields")
        for name, sub in self.map.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
                problems.append(Problem(sub.line, self._f(name), "unknown field" + hint))

    def _f(self, name: str | None) -> str:
        if name is None:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str | None, message: str, line: int | None = None) -> None:
        sub = self.map.get(name) if name else None
        self.problems.append(Problem(line or (sub.line if sub else self.node.line), self._f(name), message))

    def has(self, name: str) -> bool:
        return name in self.map and self.map[name].value is not None

    def line(self, name: str) -> int:
        return self.map[name].line if name in self.map else self.node.line

    def text(self, name: str, default: str = "", *, required: bool = False, limit: int = 500,
             pattern: re.Pattern | None = None, choices: tuple[str, ...] = (), hint: str = "") -> str:
        if not self.has(name):
            if required:
                self.fail(name, "is required", self.node.line)
            return default
        value = self.map[name].value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(name, "must be text")
            return default
        value = str(value).strip()
        if not value and required:
            self.fail(name, "must not be blank")
        elif len(value) > limit:
            self.fail(name, f"is longer than {limit} characters")
        elif any(ch in value for ch in "\x00\r\n"):
            self.fail(name, "must be one line")
        elif choices and value not in choices:
            self.fail(name, f"must be one of: {', '.join(choices)} (got {value!r})")
        elif pattern is not None and value and not pattern.match(value):
            self.fail(name, f"{value[:80]!r} is not valid here" + (f": {hint}" if hint else ""))
        else:
            return value
        return default

    def integer(self, name: str, default: int | None = None, *, low: int = 1, high: int = 10**9) -> int | None:
        if not self.has(name):
            return default
        value = self.map[name].value
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(name, f"must be a whole number from {low} to {high:,}")
            return default
        return value

    def number(self, name: str, default: float, *, low: float = 0.0, high: float = 3600.0) -> float:
        if not self.has(name):
            return default
        value = self.map[name].value
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            self.fail(name, f"must be a number from {low:g} to {high:g}")
            return default
        return float(value)

    def flag(self, name: str, default: bool) -> bool:
        if not self.has(name):
            return default
        value = self.map[name].value
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return default
        return value

    def items(self, name: str) -> list[Lined]:
        """A list field (a single value counts as a list of one)."""
        if not self.has(name):
            return []
        sub = self.map[name]
        return sub.value if isinstance(sub.value, list) else [sub]

    def texts(self, name: str, *, pattern: re.Pattern | None = None, what: str = "") -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.items(name)):
            v = item.value
            if isinstance(v, bool) or not isinstance(v, str | int) or not str(v).strip():
                self.problems.append(Problem(item.line, f"{self._f(name)}[{i}]", "must be text"))
            elif pattern is not None and not pattern.match(str(v).strip()):
                self.problems.append(Problem(item.line, f"{self._f(name)}[{i}]",
                                             f"{str(v)[:80]!r} is not {what or 'valid here'}"))
            else:
                out.append(str(v).strip())
        return tuple(out)

    def statuses(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        if not self.has(name):
            return default
        out = []
        for i, item in enumerate(self.items(name)):
            v = item.value
            if isinstance(v, bool) or not isinstance(v, int) or not 400 <= v <= 599:
                self.problems.append(Problem(item.line, f"{self._f(name)}[{i}]", "must be an HTTP status from 400 to 599"))
            else:
                out.append(v)
        return tuple(out)

    def sub(self, name: str, known: tuple[str, ...]) -> Fields:
        node = self.map.get(name) or Lined({}, self.node.line)
        return Fields(self.problems, node, self._f(name), known)
