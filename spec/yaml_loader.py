"""Reading spec YAML safely: UTF-8 only, no duplicate keys, bounded size and depth.

A spec comes from a file or from a text box on the dashboard, so the loader must never be
the thing that breaks: a duplicate key would silently keep the last value (the first
`learning_rate:` a user reads is not the one that runs), a 1 kB "billion laughs" of nested
aliases expands into gigabytes once validated and stored, and 5,000 nested brackets blow
Python's recursion limit. Each of these becomes one `SpecError` line instead.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sweepctl.spec.errors import SpecError

MAX_NODES = 100_000  # values after alias expansion; real specs have a few hundred
MAX_DEPTH = 100  # nesting levels; real specs have fewer than ten
MERGE_TAG = "tag:yaml.org,2002:merge"
UTF16_OR_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)


class SpecYAMLError(yaml.YAMLError):
    """A YAML document that parses but that sweepctl refuses; shaped like PyYAML's own
    errors (`problem`, `problem_mark`) so one formatter reports both."""

    label = ""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class SpecLoader(yaml.SafeLoader):
    """SafeLoader that reads `2e-5` as a float (YAML 1.1 wants `2.0e-5`, and a learning rate
    silently loaded as the string "2e-5" is the most common sweep-spec bug there is) and
    only true/false as booleans (below), and refuses duplicate keys, deep nesting and alias
    bombs while composing."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Depth is checked here, before recursing, so a 5,000-deep document stops at
        level MAX_DEPTH instead of at Python's recursion limit. `Node | None` as PyYAML's
        Composer declares it, though it composes a node for every event it is called on."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise SpecYAMLError(f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    # types-PyYAML declares `anchor` as a dict of nodes; PyYAML passes the event's anchor
    # name (str | None), which it uses as a key of `self.anchors`.
    def compose_mapping_node(self, anchor: str | None) -> MappingNode:  # type: ignore[override]
        """Checked on the composed node, before `<<` merges are flattened in: a key that
        overrides a merged one is YAML's merge semantics, not a duplicate."""
        node = super().compose_mapping_node(anchor)  # type: ignore[arg-type]  # as above
        _refuse_duplicate_keys(node)
        return node

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            _ExpansionCounter().size(node, 1)
        return node


# Booleans as YAML 1.2 has them: only true/false. YAML 1.1 also reads yes/no/on/off as
# booleans, so `notify: {on: [failed]}` would have the key True (the trap GitHub Actions
# users know) and `label_map: {no: 0}` a key False.
BOOL_TAG = "tag:yaml.org,2002:bool"
SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _refuse_duplicate_keys(node: MappingNode) -> None:
    first_line: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
            continue  # unhashable keys are PyYAML's own error, later
        key = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise SpecYAMLError(
                f"duplicate key '{key_node.value}' (first at line {first_line[key]})",
                key_node.start_mark,
            )
        first_line[key] = line


class _ExpansionCounter:
    """Sizes and depths of the node graph as the constructor would expand it.

    Aliases share nodes, so PyYAML itself stays small; pydantic, JSON and the store do not.
    Each node is sized once (memoized by identity), so counting the bomb costs no more than
    reading it, and the depth bound keeps this recursion shallow."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[int, int]] = {}  # id -> (values, height)
        self.open: set[int] = set()

    def size(self, node: Node, depth: int) -> int:
        key = id(node)
        if key in self.known:
            count, height = self.known[key]
        else:
            if key in self.open:
                raise SpecYAMLError("an alias refers to a node that contains it", node.start_mark)
            self.open.add(key)
            count, height = self._measure(node, depth)
            self.open.discard(key)
            self.known[key] = (count, height)
        if depth + height - 1 > MAX_DEPTH:
            raise SpecYAMLError(f"aliases expand to more than {MAX_DEPTH} levels of nesting")
        if count > MAX_NODES:
            raise SpecYAMLError(
                f"aliases expand to more than {MAX_NODES:,} values (a YAML alias bomb?)"
            )
        return count

    def _measure(self, node: Node, depth: int) -> tuple[int, int]:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        count, height = 1, 1
        for child in children:
            count += self.size(child, depth + 1)
            height = max(height, 1 + self.known[id(child)][1])
            if count > MAX_NODES:
                break
        return count, height


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=SpecLoader)


def read_spec_text(path: Path) -> str:
    """The file's text, or one line saying why it cannot be a spec."""
    if path.is_dir():
        raise SpecError(f"{path}: is a directory; expected a YAML spec file")
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data.startswith(UTF16_OR_32_BOMS) or b"\x00" in data:
        raise SpecError(f"{path}: UTF-16/32 text (byte-order mark or NUL bytes); expected UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; expected UTF-8 text"
        ) from None
    if not text.strip():
        raise SpecError(f"{path}: empty file; expected a YAML mapping")
    return text


def yaml_error_message(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}:" if mark else ""
    label = getattr(exc, "label", "invalid YAML")
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{source}:{where} {label + ': ' if label else ''}{problem}"
