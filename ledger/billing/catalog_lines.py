"""Where a field of a catalog document is written: `tomllib` gives values but no positions, so a
refusal finds its line by scanning the text.

The scan knows TOML's table headers (`[catalog]`, `[[plans]]`, `[[plans.versions]]`) and keys at
the start of a line (`credits = ...`, `"credits" = ...`, `dimensions.model = ...`). A path such
as `plans[1].versions[0].credits` is followed header by header: the second `[[plans]]`, then the
first `[[plans.versions]]` after it and before the next `[[plans]]`, then the line of `credits` in
that table's body. A step written another way (an inline table or array) stops at the line of its
key; a field that is not written at all (a required one missing) is reported at its table's
header. Lines inside multi-line strings are skipped, so text that only looks like a header is not
taken for one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PathPart = str | int

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[.=]""")


@dataclass(frozen=True, slots=True)
class _Header:
    line: int  # 1-based
    parts: tuple[str, ...]
    array: bool


def _header_parts(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


class Lines:
    """The headers and keys of one document, found once and asked for many paths."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._headers: list[_Header] = []
        self._header_lines: set[int] = set()
        self._code: list[bool] = []  # False: inside a multi-line string
        quote: str | None = None
        for number, line in enumerate(self._lines, start=1):
            self._code.append(quote is None)
            if quote is None and (match := _HEADER.match(line)):
                self._headers.append(_Header(number, _header_parts(match[2]), match[1] == "[["))
                self._header_lines.add(number)
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2 and quote in (None, delimiter):
                    quote = None if quote == delimiter else delimiter

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line `path` is written on (or its nearest enclosing table's), None if not even the
        first step is found."""
        start, end = 0, len(self._lines) + 1  # the lines after `start`, before `end`
        table: tuple[str, ...] = ()
        found: int | None = None
        index = 0
        while index < len(path):
            name = path[index]
            if isinstance(name, int):
                return found
            wanted = (*table, name)
            has_index = index + 1 < len(path) and isinstance(path[index + 1], int)
            header = self._header(wanted, start, end, int(path[index + 1]) if has_index else 0, has_index)
            if header is None and not has_index:  # an array of tables as a whole: its first
                header = self._header(wanted, start, end, 0, True)
            if header is None:
                key = self._key(name, start, end)
                return key if key is not None else found
            found, table, start = header.line, wanted, header.line
            end = self._table_end(header, end)
            index += 2 if has_index else 1
        return found

    def _header(self, parts: tuple[str, ...], start: int, end: int, ordinal: int, array: bool) -> _Header | None:
        seen = 0
        for header in self._headers:
            if start < header.line < end and header.parts == parts and header.array == array:
                if seen == ordinal:
                    return header
                seen += 1
        return None

    def _table_end(self, header: _Header, end: int) -> int:
        """Where the table of `header` and its sub-tables end: at the next header that is not
        inside it (another element of the same array, or another table)."""
        for other in self._headers:
            if header.line < other.line < end:
                inside = len(other.parts) > len(header.parts) and other.parts[: len(header.parts)] == header.parts
                if not inside:
                    return other.line
        return end

    def _key(self, name: str, start: int, end: int) -> int | None:
        """The line of key `name` in the body of the table starting after line `start` (its own
        lines, before any sub-table's header)."""
        for number in range(start + 1, min(end, len(self._lines) + 1)):
            if number in self._header_lines:
                return None
            match = _KEY.match(self._lines[number - 1]) if self._code[number - 1] else None
            if match and (match[1] or match[2] or match[3]) == name:
                return number
        return None
