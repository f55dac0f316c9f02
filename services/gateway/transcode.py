"""HTTP request to protobuf request, and protobuf response to JSON, by the HTTP rule and
protobuf's JSON mapping (json_format): path variables, then the body (`*` or one field),
then query parameters for every field that neither binds."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.gateway.routes import Route

_WELL_KNOWN_STRINGS = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}
_WRAPPERS = {
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
}


class BadHttpRequest(Exception):
    """The HTTP request cannot become the RPC's request: which field, and why."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(name)
    if found is not None:
        return found
    return next((f for f in descriptor.fields if f.json_name == name), None)


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _query_value(field: FieldDescriptor, raw: str, key: str) -> Any:
    message = field.message_type
    kind = (
        message.fields_by_name["value"].type
        if message is not None and message.full_name in _WRAPPERS
        else field.type
    )
    if kind == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise BadHttpRequest(key, f"{raw!r} is not true or false")
    return raw


def _query_leaf(descriptor: Descriptor, key: str) -> tuple[list[str], FieldDescriptor]:
    """The json-name path and the leaf field of a dotted query parameter name."""
    path: list[str] = []
    current: Descriptor | None = descriptor
    field: FieldDescriptor | None = None
    for part in key.split("."):
        if current is None:
            raise BadHttpRequest(key, "no such field")
        field = _field(current, part)
        if field is None:
            raise BadHttpRequest(key, "no such field")
        path.append(field.json_name)
        message = field.message_type
        is_leaf_message = message is not None and (
            message.full_name in _WELL_KNOWN_STRINGS or message.full_name in _WRAPPERS
        )
        current = None if message is None or is_leaf_message else message
    assert field is not None
    if field.message_type is not None and current is not None:
        raise BadHttpRequest(key, "a message field cannot be a query parameter; name its fields")
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        raise BadHttpRequest(key, "a map field cannot be a query parameter")
    return path, field


def _put(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for part in path[:-1]:
        nxt = tree.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise BadHttpRequest(".".join(path), "bound twice")
        tree = nxt
    tree[path[-1]] = value


def _bound_top_fields(route: Route) -> set[str]:
    return {v.field_path.split(".")[0] for v in route.template.variables}


def build_request(
    route: Route,
    request_class: type[Message],
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
) -> Message:
    request = request_class()
    descriptor: Descriptor = request.DESCRIPTOR  # type: ignore[assignment]
    if route.body:
        _merge_body(route, request, body)
    if route.body != "*":
        _merge_query(route, request, descriptor, query)
    elif query:
        raise BadHttpRequest(query[0][0], "this method takes every field in the body, none in the query")
    tree: dict[str, Any] = {}
    for field_path, value in path_values.items():
        names, leaf = _query_leaf(descriptor, field_path)
        _put(tree, names, _query_value(leaf, value, field_path))
    _parse(tree, request, field_path=",".join(path_values) or "path")
    try:
        # Strings that JSON allows but protobuf does not (lone surrogates) fail here.
        request.SerializeToString()
    except (ValueError, UnicodeError) as err:
        raise BadHttpRequest("body", f"cannot be encoded: {err}") from err
    return request


def _parse(data: Any, message: Message, field_path: str) -> None:
    try:
        json_format.ParseDict(data, message)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as err:
        raise BadHttpRequest(field_path, str(err)) from err


def _merge_body(route: Route, request: Message, body: bytes) -> None:
    if not body.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise BadHttpRequest("body", f"is not JSON: {err}") from err
    if route.body == "*":
        if not isinstance(data, dict):
            raise BadHttpRequest("body", "must be a JSON object")
        _parse(data, request, "body")
        return
    field = _field(request.DESCRIPTOR, route.body)  # type: ignore[arg-type]
    if field is None:
        raise BadHttpRequest(route.body, "the HTTP rule names a field the request does not have")
    _parse({field.json_name: data}, request, route.body)


def _merge_query(
    route: Route, request: Message, descriptor: Descriptor, query: Sequence[tuple[str, str]]
) -> None:
    bound = _bound_top_fields(route) | ({route.body} if route.body else set())
    tree: dict[str, Any] = {}
    repeated: dict[str, list[Any]] = {}
    for key, raw in query:
        names, leaf = _query_leaf(descriptor, key)
        top = descriptor.fields_by_name.get(key.split(".")[0]) or _field(descriptor, key.split(".")[0])
        if top is not None and top.name in bound:
            raise BadHttpRequest(key, "is bound by the path or the body")
        value = _query_value(leaf, raw, key)
        if _is_repeated(leaf):
            repeated.setdefault(".".join(names), []).append(value)
        else:
            _put(tree, names, value)
    for dotted, values in repeated.items():
        _put(tree, dotted.split("."), values)
    if tree:
        _parse(tree, request, ",".join(sorted({k for k, _ in query})))


def response_json(route: Route, response: Message) -> str:
    if route.response_body:
        value = getattr(response, route.response_body)
        if isinstance(value, Message):
            return json_format.MessageToJson(value, indent=None)
        field = response.DESCRIPTOR.fields_by_name[route.response_body]
        whole = json.loads(
            json_format.MessageToJson(response, indent=None, always_print_fields_with_no_presence=True)
        )
        return json.dumps(whole.get(field.json_name))
    return json_format.MessageToJson(response, indent=None)
