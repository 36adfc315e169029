"""What a document may cost, checked on its tokens before it is parsed or validated.

Parsing is linear in the tokens, but validation is not: graphql-core's OverlappingFieldsCanBeMerged
compares the fields of a selection set pairwise, so 1,000 copies of `viewer { kind }` (13 KB, well
within the token and alias limits) take a second of CPU to refuse. One pass of graphql-core's own
lexer counts the selections (and the operations) and stops as soon as a limit is passed, so a
document over a limit costs a few milliseconds to refuse, and one within them reaches the parser.

The lexer is the parser's, so the count is exact for any document that parses; one that does not
parse is left to the parser, which reports its syntax error the ordinary way.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import GraphQLError, GraphQLSyntaxError, Source
from graphql.language import Lexer, Token, TokenKind

from graphql_api.edge.documents import cached_operations
from ledger import constants
from ledger.core.errors import ErrorCode

_OPERATION_KEYWORDS = frozenset({"query", "mutation", "subscription"})


@dataclass(frozen=True, slots=True)
class DocumentShape:
    selections: int
    operations: int
    tokens: int


class _Scan:
    """Walks the tokens once, keeping only the nesting it needs to tell a selection from the rest."""

    def __init__(self) -> None:
        self.selections = 0
        self.operations = 0
        self.tokens = 0
        self._braces = 0  # selection sets deep
        self._parens = 0  # arguments, variable definitions, directive arguments (and their values)
        self._skip_names = 0  # names coming that are not selections: after `:`, `@` or `...`
        self._definition_open = False  # a top-level keyword seen, its selection set not yet

    def feed(self, token: Token) -> None:
        self.tokens += 1
        kind = token.kind
        if kind is TokenKind.PAREN_L:
            self._parens += 1
        elif kind is TokenKind.PAREN_R:
            self._parens -= 1
        elif self._parens:
            return  # values and variable definitions select nothing
        elif kind is TokenKind.BRACE_L:
            self._open_selection_set()
        elif kind is TokenKind.BRACE_R:
            self._braces -= 1
        elif kind is TokenKind.NAME:
            self._name(token.value or "")
        elif kind is TokenKind.COLON or kind is TokenKind.AT:
            self._skip_names = 1  # the field behind an alias, a directive's name
        elif kind is TokenKind.SPREAD:
            self.selections += 1
            self._skip_names = 2  # a fragment's name, or `on` and a type's name

    def _open_selection_set(self) -> None:
        if self._braces == 0:
            if not self._definition_open:
                self.operations += 1  # the shorthand `{ ... }`: an anonymous query
            self._definition_open = False
        self._skip_names = 0
        self._braces += 1

    def _name(self, value: str) -> None:
        if self._braces == 0:
            # Top-level words: `query`, `mutation`, `subscription` start an operation, `fragment`
            # a fragment; the rest are their names, type conditions and directives.
            if value in _OPERATION_KEYWORDS or value == "fragment":
                self.operations += value != "fragment"
                self._definition_open = True
            return
        if self._skip_names:
            # After `...`: `on` and a type's name (an inline fragment), or a fragment's name.
            self._skip_names = 1 if self._skip_names == 2 and value == "on" else 0
            return
        self.selections += 1


def document_shape(query: str, *, selections_max: int, tokens_max: int) -> DocumentShape | None:
    """The document's selections, operations and tokens, counting stopped once a limit is passed;
    None when it does not lex (the parser then says why)."""
    scan = _Scan()
    lexer = Lexer(Source(query))
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            scan.feed(token)
            if scan.selections > selections_max or scan.tokens > tokens_max:
                break
            token = lexer.advance()
    except GraphQLSyntaxError:
        return None
    return DocumentShape(scan.selections, scan.operations, scan.tokens)


def document_refusal(query: str | None, operation_name: str | None) -> GraphQLError | None:
    """Why the document is refused before parsing (an error with its code), or None to go on."""
    if not query:
        return None
    operations = cached_operations(query)
    if operations is not None:
        # Parsed and validated before, so within the limits: only the operation name can be amiss.
        return _unnamed() if operations > 1 and not operation_name else None
    shape = document_shape(query, selections_max=constants.query_selections_max, tokens_max=constants.query_tokens_max)
    if shape is None:
        return None
    if shape.tokens > constants.query_tokens_max:
        # What the parser would say at its own limit, without parsing 5,000 tokens first.
        message = f"Syntax Error: Document contains more than {constants.query_tokens_max} tokens. Parsing aborted."
        return GraphQLError(message, extensions={"code": ErrorCode.GRAPHQL_PARSE_FAILED})
    if shape.selections > constants.query_selections_max:
        message = (
            f"the document has more than {constants.query_selections_max} selections; split it into several requests"
        )
        return GraphQLError(message, extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED})
    if shape.operations > 1 and not operation_name:
        return _unnamed()
    return None


def _unnamed() -> GraphQLError:
    # The GraphQL spec: with several operations, operationName says which to run.
    message = "the document has several operations: send operationName to say which one to run"
    return GraphQLError(message, extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED})
