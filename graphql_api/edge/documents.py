"""Parse each distinct GraphQL document once per process.

Strawberry's own `ParserCache` parses inside its hook, where a syntax error escapes the error
handling; this cache only hands over documents that already parsed and validated cleanly, so a bad
document always takes the ordinary path (and gets its `GRAPHQL_PARSE_FAILED` code)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import DocumentNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from ledger import constants

_documents: OrderedDict[str, DocumentNode] = OrderedDict()


def cached_operations(query: str) -> int | None:
    """How many operations a cached document holds (it passed every check before), or None when
    it is not cached: what `query_cost` needs to skip lexing a document it has seen."""
    document = _documents.get(query)
    if document is None:
        return None
    return sum(1 for definition in document.definitions if isinstance(definition, OperationDefinitionNode))


class DocumentCache(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            document = _documents.get(context.query)
            if document is not None:
                _documents.move_to_end(context.query)
                context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.query is None or context.graphql_document is None or context.pre_execution_errors:
            return
        _documents[context.query] = context.graphql_document
        while len(_documents) > constants.documents_cached_max:
            _documents.popitem(last=False)
