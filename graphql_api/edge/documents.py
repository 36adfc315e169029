"""Parse and validate each distinct GraphQL document once per process (and schema).

Strawberry's own `ParserCache` parses inside its hook, where a syntax error escapes the error
handling; this cache only hands over documents that already parsed and validated cleanly, so a bad
document always takes the ordinary path (and gets its `GRAPHQL_PARSE_FAILED` code)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from weakref import WeakKeyDictionary

from graphql import DocumentNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from ledger import constants

# Per schema (a process serves one; the tests run several side by side, e.g. without introspection),
# since a document valid against one need not be against another.
_documents: WeakKeyDictionary[object, OrderedDict[str, DocumentNode]] = WeakKeyDictionary()


def _cache(schema: object) -> OrderedDict[str, DocumentNode]:
    cache = _documents.get(schema)
    if cache is None:
        cache = _documents[schema] = OrderedDict()
    return cache


def cached_document(schema: object, query: str) -> DocumentNode | None:
    """The document for this text if it parsed and validated cleanly against `schema` before."""
    cache = _cache(schema)
    document = cache.get(query)
    if document is not None:
        cache.move_to_end(query)
    return document


def cached_operations(query: str) -> int | None:
    """How many operations a cached document holds (it passed the cost checks before, which do not
    depend on the schema), or None when it is not cached: what `query_cost` needs to skip lexing a
    document it has seen."""
    for cache in list(_documents.values()):
        document = cache.get(query)
        if document is not None:
            return sum(1 for definition in document.definitions if isinstance(definition, OperationDefinitionNode))
    return None


class DocumentCache(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            document = cached_document(context.schema, context.query)
            if document is not None:
                context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.query is None or context.graphql_document is None or context.pre_execution_errors:
            return
        cache = _cache(context.schema)
        cache[context.query] = context.graphql_document
        while len(cache) > constants.documents_cached_max:
            cache.popitem(last=False)
