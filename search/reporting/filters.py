"""`--where` filters: a small grammar of comparisons over the trials' columns, evaluated as boolean masks.

User text is never handed to `eval`, `DataFrame.query` or `pd.eval`: those run Python, so a filter could
call functions and read or write files. Here the text is tokenized and parsed by hand, and the only things
that exist are column names, literals (numbers, quoted strings, True/False), comparisons (`=` means
`==`), `in [...]` / `not in [...]`, `and` / `or` / `not` and parentheses; a column whose name is not a
plain word is written in backticks (`` `tuner/epochs` ``). Anything else is refused with
one line saying what, and the input is bounded in length and nesting so no text can exhaust the stack.
"""

from __future__ import annotations

import difflib
import keyword
import operator
import re
from dataclasses import dataclass

import pandas as pd

from search.errors import TableError

MAX_LENGTH = 2_000
MAX_DEPTH = 32  # nested parentheses and `not`s together

NUMBER = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
TOKEN = re.compile(
    rf"""(?P<space>\ +)
    |(?P<number>{NUMBER})
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<string>'[^'\\\x00-\x1f\x7f]*'|"[^"\\\x00-\x1f\x7f]*")
    |(?P<column>`[^`\\\x00-\x1f\x7f]+`)
    |(?P<op>==|!=|<=|>=|<|>|=|\(|\)|\[|\]|,|-)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
WORDS = {"and", "or", "not", "in", "True", "False"}
FORBIDDEN_WORDS = set(keyword.kwlist) - WORDS  # lambda, import, is, if, None, ...
STRING_PREFIXES = {"f", "b", "r", "u", "rb", "br", "fr", "rf"}
SPELLINGS = {"=": "==", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
CHARACTERS = {
    "@": "'@' (Python variables) is not allowed",
    "`": "a backtick-quoted column name is not closed (or holds characters that are not allowed)",
    ".": "'.' (attribute access) is not allowed",
    "\\": "backslashes are not allowed",
    "&": "'&' is not allowed: write 'and'",
    "|": "'|' is not allowed: write 'or'",
    "~": "'~' is not allowed: write 'not'",
    ":": "':' is not allowed (no lambdas, slices or ':=')",
}


class _Refused(Exception):
    """What is wrong with the filter; `filter_trials` says it of the whole `--where` text."""


def filter_trials(trials: pd.DataFrame, where: str) -> pd.DataFrame:
    """`--where "bn = 'pre' and depth >= 32"`: the trials matching the filter, in their order."""
    try:
        condition = parse(where, list(trials.columns))
        return trials[condition.mask(trials)]
    except _Refused as reason:
        raise TableError(f"--where {_shown(where)}: {reason}") from None


def _shown(text: str) -> str:
    """The filter as the message quotes it: on one line (repr escapes newlines and NULs), and short."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


# The tree: each node gives the boolean mask of the rows it keeps.


@dataclass(frozen=True)
class Compare:
    column: str
    op: str
    value: object

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        if self.op == "!=":  # the complement of `==`, so that a missing value counts as different
            return ~Compare(self.column, "==", self.value).mask(frame)
        return _compared(frame[self.column], self.column, self.op, self.value)


@dataclass(frozen=True)
class Within:
    column: str
    values: tuple
    negated: bool

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        kept = pd.Series(False, index=frame.index)
        for value in self.values:
            kept |= Compare(self.column, "==", value).mask(frame)
        return ~kept if self.negated else kept


@dataclass(frozen=True)
class Both:
    left: object
    right: object

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        return self.left.mask(frame) & self.right.mask(frame)


@dataclass(frozen=True)
class Either:
    left: object
    right: object

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        return self.left.mask(frame) | self.right.mask(frame)


@dataclass(frozen=True)
class Negated:
    part: object

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        return ~self.part.mask(frame)


@dataclass(frozen=True)
class Column:
    name: str


def _compared(values: pd.Series, name: str, op: str, value: object) -> pd.Series:
    """`values <op> value` as a mask, comparing like with like: MLflow keeps every param as text, so a
    column of "True"/"False" matches `True`, and a number matches the text "20" of a mixed column."""
    compare = COMPARISONS[op]
    ordered = op not in ("==", "!=")
    if isinstance(value, bool) or pd.api.types.is_bool_dtype(values):
        if ordered:
            raise _Refused(f"True/False can only be compared with = or !=, not {op} ({name})")
        if pd.api.types.is_bool_dtype(values):
            if not isinstance(value, bool) and str(value) not in ("True", "False"):
                raise _Refused(f"{name} holds True/False, not {value!r}")
            value = value if isinstance(value, bool) else value == "True"
            return compare(values, value).fillna(False).astype(bool)
        if _numeric(values):
            raise _Refused(f"{name} holds numbers, not True/False")
        value = str(value)
    if _numeric(values):
        if isinstance(value, str):
            if not re.fullmatch(rf"-?{NUMBER}", value.strip()):
                raise _Refused(f"{name} holds numbers: compare it with a number, not {value!r}")
            value = float(value)
        return compare(values, value).fillna(False).astype(bool)
    if isinstance(value, str):
        return compare(values.astype("string"), value).fillna(False).astype(bool)
    return compare(pd.to_numeric(values, errors="coerce"), value).fillna(False).astype(bool)


def _numeric(values: pd.Series) -> bool:
    """A column of numbers; one with no value at all is compared as text (it matches nothing)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and values.notna().any()


# Text -> tokens -> tree.


@dataclass(frozen=True)
class Token:
    kind: str  # name, number, string, op, end
    text: str
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    """The tokens of `text`; a character or word outside the grammar is refused here, where it is."""
    if len(text) > MAX_LENGTH:
        raise _Refused(f"longer than {MAX_LENGTH:,} characters")
    found = []
    for match in TOKEN.finditer(text):
        kind, piece, start = match.lastgroup, match.group(), match.start()
        if kind == "space":
            continue
        if kind == "other":
            raise _Refused(_character(text, start))
        if kind == "name" and piece in FORBIDDEN_WORDS:
            raise _Refused(f"{piece!r} is not allowed")
        found.append(Token(kind, piece, start, match.end()))
    found.append(Token("end", "", len(text), len(text)))
    return found


def _character(text: str, at: int) -> str:
    char = text[at]
    if char in ("'", '"'):
        rest = text[at + 1 :]
        closing = rest.find(char)
        inside = rest if closing < 0 else rest[:closing]
        if "\\" in inside:
            return "backslashes are not allowed"
        if any(ord(c) < 32 or ord(c) == 127 for c in inside):
            return "control characters (newlines, NUL, ...) are not allowed"
        return f"the string at character {at + 1} is not closed"
    if ord(char) < 32 or ord(char) == 127:
        return f"control character {char!r} is not allowed"
    if char in "+*/%^":
        return f"arithmetic ({char!r}) is not allowed"
    return CHARACTERS.get(char, f"character {char!r} at {at + 1} is not allowed")


def parse(text: str, columns: list[str]):
    """The tree of `text`, whose names must all be among `columns`."""
    return _Parser(tokens(text), columns).whole()


class _Parser:
    """Recursive descent, one method per precedence level: or < and < not < comparison."""

    def __init__(self, found: list[Token], columns: list[str]):
        self.tokens, self.at, self.depth = found, 0, 0
        self.columns = columns

    def whole(self):
        if self.peek().kind == "end":
            raise _Refused("empty filter")
        tree = self.either()
        if self.peek().kind != "end":
            raise _Refused(f"unexpected {self.described(self.peek())}")
        return tree

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        if self.peek().kind in ("op", "name") and self.peek().text == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise _Refused(f"expected {text!r}, found {self.described(self.peek())}")

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep")

    def either(self):
        tree = self.both()
        while self.accept("or"):
            tree = Either(tree, self.both())
        return tree

    def both(self):
        tree = self.negated()
        while self.accept("and"):
            tree = Both(tree, self.negated())
        return tree

    def negated(self):
        if self.accept("not"):
            self.deeper()
            tree = Negated(self.negated())
            self.depth -= 1
            return tree
        if self.accept("("):
            self.deeper()
            tree = self.either()
            self.expect(")")
            self.depth -= 1
            return tree
        return self.comparison()

    def comparison(self):
        left = self.operand()
        if self.peek().text == "in" or (self.peek().text == "not" and self.peek(1).text == "in"):
            negated = self.accept("not")
            self.expect("in")
            if not isinstance(left, Column):
                raise _Refused(f"'in' needs a column on its left, not {left!r}")
            return Within(left.name, self.listed(), negated)
        if not self.at_comparison():
            if self.peek().kind == "op" and self.peek().text == "-":
                raise _Refused("arithmetic ('-') is not allowed")
            if isinstance(left, Column):
                raise _Refused(f"{left.name!r} alone is not a condition: compare it, e.g. {left.name} = ...")
            raise _Refused(f"expected a comparison after {left!r}, found {self.described(self.peek())}")
        tree = None
        while self.at_comparison():
            op = SPELLINGS[self.take().text]
            right = self.operand()
            step = self.compared(left, op, right)
            tree = step if tree is None else Both(tree, step)  # 20 <= depth < 56, as Python chains it
            left = right
        return tree

    def at_comparison(self) -> bool:
        return self.peek().kind == "op" and self.peek().text in SPELLINGS

    def compared(self, left, op: str, right) -> Compare:
        if isinstance(left, Column) and isinstance(right, Column):
            raise _Refused(f"compare a column with a value, not with another column ({left.name} {op} {right.name})")
        if isinstance(left, Column):
            return Compare(left.name, op, right)
        if isinstance(right, Column):
            return Compare(right.name, FLIPPED[op], left)
        raise _Refused(f"{left!r} {op} {right!r} compares two values: one side must be a column")

    def listed(self) -> tuple:
        if self.peek().text == "(":
            raise _Refused("write the values of 'in' as a list: in [...]")
        self.expect("[")
        values = []
        while not self.accept("]"):
            value = self.operand()
            if isinstance(value, Column):
                raise _Refused(f"the list after 'in' holds values, not the column {value.name!r}")
            values.append(value)
            if not self.accept(","):
                self.expect("]")
                break
        return tuple(values)

    def operand(self):
        """A column or a literal; what Python would do next with it (call, subscript) is refused."""
        token = self.take()
        if token.kind == "op" and token.text == "-":
            if not (self.peek().kind == "number" and self.peek().start == token.end):
                raise _Refused("arithmetic ('-') is not allowed")
            token = self.take()
            token = Token("number", "-" + token.text, token.start - 1, token.end)
        after = self.peek()
        if after.kind == "op" and after.text in ("(", "["):
            what = "calls" if after.text == "(" else "subscripts"
            raise _Refused(f"{what} are not allowed: {token.text}{after.text}...")
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "string":
            return token.text[1:-1]
        if token.kind == "column":  # `tuner/epochs`: a column whose name is not a plain word
            return Column(self.known(token.text[1:-1]))
        if token.kind != "name" or token.text in WORDS - {"True", "False"}:
            raise _Refused(f"expected a column or a value, found {self.described(token)}")
        if after.kind == "string" and after.start == token.end and token.text.lower() in STRING_PREFIXES:
            raise _Refused(f"string prefixes ({token.text}'...': f-strings, bytes, raw strings) are not allowed")
        if token.text in ("True", "False"):
            return token.text == "True"
        return Column(self.known(token.text))

    def known(self, name: str) -> str:
        if name in self.columns:
            return name
        close = difflib.get_close_matches(name, self.columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _Refused(f"no column {name!r}{hint}; columns: {', '.join(sorted(map(str, self.columns)))}")

    @staticmethod
    def described(token: Token) -> str:
        return "the end" if token.kind == "end" else f"{token.text!r} at character {token.start + 1}"


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)
