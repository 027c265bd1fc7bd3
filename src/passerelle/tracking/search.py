"""The run filter language: ``metrics.f1 > 0.8 and params.penalty = 'l2'``.

Grammar (case-insensitive keywords)::

    filter     := comparison ( AND comparison )*
    comparison := identifier op value
    identifier := (metrics|params|tags|attributes) '.' key  |  attribute
    key        := name | `any key` | "any key"
    op         := = | != | < | <= | > | >= | LIKE | ILIKE
    value      := number | 'string' | "string"

Metrics compare numbers; params, tags and text attributes compare strings. A malformed filter
raises ``InvalidInput`` naming the position and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from passerelle.core.errors import InvalidInput

Kind = Literal["metric", "param", "tag", "attribute"]

KIND_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}

# attribute name in the filter -> (column on runs, value type)
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("id", "str"),
    "id": ("id", "str"),
    "run_name": ("name", "str"),
    "name": ("name", "str"),
    "status": ("status", "str"),
    "start_time": ("start_time", "num"),
    "end_time": ("end_time", "num"),
    "created_by": ("created_by", "str"),
    "user_id": ("created_by", "str"),
    "parent_run_id": ("parent_run_id", "str"),
    "experiment_id": ("experiment_id", "num"),
}

OPERATORS = ("<=", ">=", "!=", "<>", "=", "==", "<", ">", "LIKE", "ILIKE")

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<backquoted>`[^`]*`)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<dot>\.)
    | (?P<word>[A-Za-z_][\w\-/:]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Comparison:
    kind: Kind
    key: str  # metric/param/tag key, or the runs column for attributes
    op: str  # one of = != < <= > >= LIKE ILIKE
    value: str | float


@dataclass(frozen=True)
class OrderBy:
    kind: Kind
    key: str
    descending: bool


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f"malformed filter: unexpected character {text[pos:].lstrip()[:1]!r} "
                f"at position {pos + len(text[pos:]) - len(text[pos:].lstrip())}",
                field="filter",
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    if token[0] == "'":
        return token[1:-1].replace("''", "'").replace("\\'", "'")
    if token[0] == '"':
        return token[1:-1].replace('\\"', '"')
    return token[1:-1]  # backquoted


class _Cursor:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise InvalidInput(
                f"malformed {self.field}: expected {expected} at the end of {self.text!r}",
                field=self.field,
            )
        self.i += 1
        return tok

    def fail(self, tok: tuple[str, str, int], expected: str) -> InvalidInput:
        return InvalidInput(
            f"malformed {self.field}: expected {expected} at position {tok[2]}, found {tok[1]!r}",
            field=self.field,
        )

    def identifier(self) -> tuple[Kind, str]:
        tok = self.take("an identifier such as metrics.f1")
        if tok[0] not in ("word", "backquoted"):
            raise self.fail(tok, "an identifier such as metrics.f1")
        head = _unquote(tok[1]) if tok[0] == "backquoted" else tok[1]
        nxt = self.peek()
        if nxt is not None and nxt[0] == "dot":
            self.i += 1
            kind = KIND_PREFIXES.get(head.lower())
            if kind is None:
                raise InvalidInput(
                    f"malformed {self.field}: unknown prefix {head!r} at position {tok[2]}; "
                    "use metrics., params., tags. or attributes.",
                    field=self.field,
                )
            key_tok = self.take("a key after the dot")
            if key_tok[0] in ("string", "backquoted"):
                key = _unquote(key_tok[1])
            elif key_tok[0] in ("word", "number"):
                key = key_tok[1]
                # keys may contain dots: metrics.val.loss
                while (n := self.peek()) is not None and n[0] == "dot":
                    self.i += 1
                    key += "." + self.take("the rest of the key")[1]
            else:
                raise self.fail(key_tok, "a key after the dot")
            if kind == "attribute":
                return "attribute", _attribute(key, self.field, key_tok[2])
            return kind, key
        return "attribute", _attribute(head, self.field, tok[2])


def _attribute(name: str, field: str, pos: int) -> str:
    if name.lower() not in ATTRIBUTES:
        raise InvalidInput(
            f"malformed {field}: unknown attribute {name!r} at position {pos}; known: "
            f"{', '.join(sorted(ATTRIBUTES))}, or prefix with metrics., params. or tags.",
            field=field,
        )
    return ATTRIBUTES[name.lower()][0]


def _attribute_type(column: str) -> str:
    return next(t for c, t in ATTRIBUTES.values() if c == column)


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a filter into comparisons joined by AND (an empty filter matches every run)."""
    if text is None or not text.strip():
        return []
    cur = _Cursor(text, "filter")
    out: list[Comparison] = []
    while True:
        kind, key = cur.identifier()
        op_tok = cur.take("a comparison operator")
        if op_tok[0] == "op":
            op = {"==": "=", "<>": "!="}.get(op_tok[1], op_tok[1])
        elif op_tok[0] == "word" and op_tok[1].upper() in ("LIKE", "ILIKE"):
            op = op_tok[1].upper()
        else:
            raise cur.fail(op_tok, f"an operator ({', '.join(OPERATORS)})")
        val_tok = cur.take("a value")
        numeric = kind == "metric" or (kind == "attribute" and _attribute_type(key) == "num")
        if val_tok[0] == "number":
            value: str | float = float(val_tok[1]) if numeric else val_tok[1]
        elif val_tok[0] == "string":
            value = _unquote(val_tok[1])
            if numeric and op not in ("LIKE", "ILIKE"):
                raise InvalidInput(
                    f"malformed filter: {key!r} is numeric but is compared with the string "
                    f"{val_tok[1]} at position {val_tok[2]}",
                    field="filter",
                )
        else:
            raise cur.fail(val_tok, "a number or a quoted string")
        if op in ("LIKE", "ILIKE") and numeric:
            raise InvalidInput(
                f"malformed filter: {op} needs a text field, {key!r} is numeric", field="filter"
            )
        out.append(Comparison(kind, key, op, value))
        nxt = cur.peek()
        if nxt is None:
            return out
        if nxt[0] == "word" and nxt[1].upper() == "AND":
            cur.i += 1
            continue
        if nxt[0] == "word" and nxt[1].upper() == "OR":
            raise InvalidInput(
                f"malformed filter: OR is not supported (position {nxt[2]}); "
                "run two searches instead",
                field="filter",
            )
        raise cur.fail(nxt, "AND or the end of the filter")


def parse_order_by(items: list[str] | None) -> list[OrderBy]:
    """Parse ``["metrics.f1 DESC", "start_time"]``; the default order is newest first."""
    out: list[OrderBy] = []
    for item in items or []:
        cur = _Cursor(item, "order_by")
        kind, key = cur.identifier()
        descending = False
        nxt = cur.peek()
        if nxt is not None:
            if nxt[0] == "word" and nxt[1].upper() in ("ASC", "DESC"):
                descending = nxt[1].upper() == "DESC"
                cur.i += 1
            if (extra := cur.peek()) is not None:
                raise cur.fail(extra, "ASC, DESC or the end of the clause")
        out.append(OrderBy(kind, key, descending))
    return out
