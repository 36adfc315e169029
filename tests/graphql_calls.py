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
    GraphQLObjectType,
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
        case "String" if name == "userId":
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


def value_for(
    name: str, type_: GraphQLInputType, ids: IdValue, overrides: dict[str, Any], every_id: bool = False
) -> Any:
    if name in overrides:
        return overrides[name]
    if isinstance(type_, GraphQLNonNull):
        return value_for(name, type_.of_type, ids, overrides, every_id)
    if isinstance(type_, GraphQLList):
        return [value_for(name, type_.of_type, ids, overrides, every_id)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return _scalar(name, type_, ids)
    assert isinstance(type_, GraphQLInputObjectType)
    return {
        field_name: value_for(field_name, input_field.type, ids, overrides, every_id)
        for field_name, input_field in type_.fields.items()
        if _required(input_field) or field_name in overrides or (every_id and _takes_id(field_name, input_field))
    }


def _takes_id(name: str, argument: GraphQLArgument | GraphQLInputField) -> bool:
    """An argument naming something of a tenant: an ID, or a user id."""
    return get_named_type(argument.type).name == "ID" or name == "userId"


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


def arguments(field: GraphQLField, ids: IdValue, overrides: dict[str, Any], every_id: bool = False) -> str:
    parts = [
        f"{name}: {_literal(value_for(name, argument.type, ids, overrides, every_id), argument.type)}"
        for name, argument in field.args.items()
        if _required(argument) or name in overrides or (every_id and _takes_id(name, argument))
    ]
    return f"({', '.join(parts)})" if parts else ""


def selection(field: GraphQLField, depth: int = 0) -> str:
    """`{ __typename }`, or with `depth`, every field without required arguments that many levels down."""
    named = get_named_type(field.type)
    if is_leaf_type(named):
        return ""
    if depth == 0 or not isinstance(named, GraphQLObjectType):
        return " { __typename }"
    inner = [
        f"{name}{selection(child, depth - 1)}"
        for name, child in named.fields.items()
        if not any(_required(argument) for argument in child.args.values())
    ]
    return " { __typename " + " ".join(inner) + " }"


def call(
    operation: str,
    name: str,
    ids: IdValue,
    overrides: dict[str, Any] | None = None,
    every_id: bool = False,
    depth: int = 0,
) -> str:
    """`mutation { name(args) { __typename } }` for a root field of `operation`; with `every_id`, the
    optional arguments naming a tenant's things are filled too."""
    root = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type, "subscription": SCHEMA.subscription_type}
    type_ = root[operation]
    assert type_ is not None
    field = type_.fields[name]
    return f"{operation} {{ {name}{arguments(field, ids, overrides or {}, every_id)}{selection(field, depth)} }}"


def nested_call(
    org_field: str,
    organization_id: str,
    ids: IdValue,
    overrides: dict[str, Any] | None = None,
    every_id: bool = False,
    depth: int = 0,
) -> str:
    """`query { organization(id: ...) { field(args) { __typename } } }`."""
    organization = SCHEMA.get_type("Organization")
    field = organization.fields[org_field]  # type: ignore[union-attr]
    inner = f"{org_field}{arguments(field, ids, overrides or {}, every_id)}{selection(field, depth)}"
    return f'query {{ organization(id: "{organization_id}") {{ {inner} }} }}'


def root_fields(operation: str) -> list[str]:
    type_ = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type, "subscription": SCHEMA.subscription_type}[
        operation
    ]
    return sorted(type_.fields) if type_ is not None else []


def organization_fields() -> list[str]:
    organization = SCHEMA.get_type("Organization")
    return sorted(organization.fields)  # type: ignore[union-attr]
