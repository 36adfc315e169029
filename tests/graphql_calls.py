"""Build a call of any field from the schema alone: required arguments filled with plausible values,
and the smallest selection (`__typename`). Access tests use it so a new field is covered the day it
is added."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)

from graphql_api.schema import graphql_schema

SCHEMA = graphql_schema()

# (field or argument name, scalar) -> value; the fallbacks by scalar follow.
IdValue = Callable[[str], str]


def _scalar(name: str, scalar: GraphQLScalarType, ids: IdValue) -> Any:
    match scalar.name:
        case "ID":
            return ids(name)
        case "String":
            if "email" in name.lower():
                return "someone@example.com"
            return "probe-" + uuid.uuid4().hex[:8]
        case "Credits" | "Quantity":
            return "1"
        case "DateTime":
            return (datetime.now(UTC) + timedelta(days=1)).isoformat()
        case "Int":
            return 1
        case "Boolean":
            return False
        case _:
            return "x"


def value_for(name: str, type_: GraphQLInputType, ids: IdValue, overrides: dict[str, Any]) -> Any:
    if name in overrides:
        return overrides[name]
    if isinstance(type_, GraphQLNonNull):
        return value_for(name, type_.of_type, ids, overrides)
    if isinstance(type_, GraphQLList):
        return [value_for(name, type_.of_type, ids, overrides)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return _scalar(name, type_, ids)
    assert isinstance(type_, GraphQLInputObjectType)
    return {
        field_name: value_for(field_name, input_field.type, ids, overrides)
        for field_name, input_field in type_.fields.items()
        if _required(input_field) or field_name in overrides
    }


def _required(argument: GraphQLArgument | GraphQLInputField) -> bool:
    from graphql import Undefined

    return isinstance(argument.type, GraphQLNonNull) and argument.default_value is Undefined


def _literal(value: Any, type_: GraphQLInputType) -> str:
    named = get_named_type(type_)
    if isinstance(named, GraphQLEnumType) and isinstance(value, str):
        return value
    if isinstance(value, dict):
        assert isinstance(named, GraphQLInputObjectType)
        return "{" + ", ".join(f"{k}: {_literal(v, named.fields[k].type)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        assert isinstance(inner, GraphQLList)
        return "[" + ", ".join(_literal(v, inner.of_type) for v in value) + "]"
    return json.dumps(value)


def arguments(field: GraphQLField, ids: IdValue, overrides: dict[str, Any]) -> str:
    parts = [
        f"{name}: {_literal(value_for(name, argument.type, ids, overrides), argument.type)}"
        for name, argument in field.args.items()
        if _required(argument) or name in overrides
    ]
    return f"({', '.join(parts)})" if parts else ""


def selection(field: GraphQLField) -> str:
    return "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"


def call(operation: str, name: str, ids: IdValue, overrides: dict[str, Any] | None = None) -> str:
    """`mutation { name(args) { __typename } }` for a root field of `operation`."""
    root = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type, "subscription": SCHEMA.subscription_type}
    type_ = root[operation]
    assert type_ is not None
    field = type_.fields[name]
    return f"{operation} {{ {name}{arguments(field, ids, overrides or {})}{selection(field)} }}"


def nested_call(org_field: str, organization_id: str, ids: IdValue, overrides: dict[str, Any] | None = None) -> str:
    """`query { organization(id: ...) { field(args) { __typename } } }`."""
    organization = SCHEMA.get_type("Organization")
    field = organization.fields[org_field]  # type: ignore[union-attr]
    inner = f"{org_field}{arguments(field, ids, overrides or {})}{selection(field)}"
    return f'query {{ organization(id: "{organization_id}") {{ {inner} }} }}'


def root_fields(operation: str) -> list[str]:
    type_ = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type, "subscription": SCHEMA.subscription_type}[
        operation
    ]
    return sorted(type_.fields) if type_ is not None else []


def organization_fields() -> list[str]:
    organization = SCHEMA.get_type("Organization")
    return sorted(organization.fields)  # type: ignore[union-attr]
