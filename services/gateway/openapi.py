"""The OpenAPI 3 document of the gateway, generated from the same descriptors and HTTP
rules that route calls: paths and their parameters, request and response schemas from
the message descriptors (protobuf's JSON mapping), and the bearer security scheme."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from services.gateway.routes import Route

JSON = "application/json"
_INT64_TYPES = {
    FieldDescriptor.TYPE_INT64: r"^-?[0-9]+$",
    FieldDescriptor.TYPE_SINT64: r"^-?[0-9]+$",
    FieldDescriptor.TYPE_SFIXED64: r"^-?[0-9]+$",
    FieldDescriptor.TYPE_UINT64: r"^[0-9]+$",
    FieldDescriptor.TYPE_FIXED64: r"^[0-9]+$",
}
_INT32: dict[str, Any] = {"type": "integer", "format": "int32"}
_UINT32: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 4294967295}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
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
_PATH_PARAM: dict[str, Any] = {"type": "string", "pattern": "^[^/:]+$"}
_PATH_PARAM_MULTI: dict[str, Any] = {"type": "string", "pattern": "^[^:]+$"}
STATUS_SCHEMA = "google.rpc.Status"


def _behaviours(field: FieldDescriptor) -> set[int]:
    options = field.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        if enum.full_name not in self.components:
            self.components[enum.full_name] = {"type": "string", "enum": [v.name for v in enum.values]}
        return self.ref(enum.full_name)

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        if field.type in _INT64_TYPES:
            return {"type": "string", "format": "int64", "pattern": _INT64_TYPES[field.type]}
        return dict(_SCALARS.get(field.type, {"type": "string"}))

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is None:
            return self.scalar(field)
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name in _WRAPPERS:
            return self.scalar(message.fields_by_name["value"])
        return self.message(message)

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.single(message.fields_by_name["value"])}
        schema = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def properties(self, message: Descriptor, leave_out: Collection[str] = ()) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for f in message.fields:
            if f.name in leave_out:
                continue
            schema = self.field(f)
            if field_behavior_pb2.OUTPUT_ONLY in _behaviours(f):
                # readOnly beside a $ref needs allOf in OpenAPI 3.0.
                schema = (
                    {"allOf": [schema], "readOnly": True}
                    if "$ref" in schema
                    else {**schema, "readOnly": True}
                )
            properties[f.json_name] = schema
        return properties

    def message(self, message: Descriptor) -> dict[str, Any]:
        name = message.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages refer to themselves
            self.components[name] = {"type": "object", "properties": self.properties(message)}
        return self.ref(name)


def _query_parameters(
    schemas: _Schemas, message: Descriptor, prefix: str, leave_out: set[str], depth: int = 0
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for f in message.fields:
        if f.name in leave_out:
            continue
        name = f"{prefix}{f.json_name}"
        nested = f.message_type
        if nested is not None and nested.GetOptions().map_entry:
            continue
        if nested is not None and nested.full_name not in _WELL_KNOWN and nested.full_name not in _WRAPPERS:
            if not f.is_repeated and depth < 2:
                found.extend(_query_parameters(schemas, nested, f"{name}.", set(), depth + 1))
            continue
        if (
            nested is not None
            and nested.full_name in _WELL_KNOWN
            and nested.full_name
            not in (
                "google.protobuf.Timestamp",
                "google.protobuf.Duration",
                "google.protobuf.FieldMask",
            )
        ):
            continue
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schemas.field(f),
        }
        if f.is_repeated:
            parameter["style"] = "form"
            parameter["explode"] = True
        found.append(parameter)
    return found


def openapi_path(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """The template as an OpenAPI path: each wildcard its own path parameter, named
    after the collection before it (`organisations/{organisationsId}`)."""
    parts: list[str] = []
    parameters: list[dict[str, Any]] = []
    used: set[str] = set()
    previous = ""
    for segment in route.template.segments:
        if segment.literal is not None:
            parts.append(segment.literal)
            previous = segment.literal
            continue
        base = f"{previous}Id" if previous else (segment.variable or "segment").replace(".", "_")
        name = base
        n = 2
        while name in used:
            name = f"{base}{n}"
            n += 1
        used.add(name)
        parts.append("{" + name + "}")
        description = f"Part of `{segment.variable}`." if segment.variable else "A path segment."
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": dict(_PATH_PARAM_MULTI if segment.multi else _PATH_PARAM),
            }
        )
        previous = ""
    path = "/" + "/".join(parts)
    if route.template.verb:
        path += ":" + route.template.verb
    return path, parameters


def _status_schema(schemas: _Schemas) -> None:
    schemas.components[STATUS_SCHEMA] = {
        "type": "object",
        "description": "google.rpc.Status: the gRPC code, a message, and details such as "
        "google.rpc.ErrorInfo (a stable reason) and google.rpc.BadRequest (field violations).",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": dict(_WELL_KNOWN["google.protobuf.Any"])},
        },
    }


def _operation(schemas: _Schemas, route: Route) -> tuple[str, dict[str, Any]]:
    path, parameters = openapi_path(route)
    request = route.method.input_type
    bound = {v.field_path.split(".")[0] for v in route.template.variables}
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [route.service.name],
        "summary": f"{route.service.full_name}.{route.method.name}",
    }
    if route.body == "*":
        operation["requestBody"] = {
            "required": True,
            "content": {
                JSON: {"schema": {"type": "object", "properties": schemas.properties(request, bound)}}
            },
        }
    else:
        if route.body:
            body_field = request.fields_by_name[route.body]
            operation["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": schemas.field(body_field)}},
            }
        leave_out = bound | ({route.body} if route.body else set())
        parameters = parameters + _query_parameters(schemas, request, "", leave_out)
    if parameters:
        operation["parameters"] = parameters
    response = route.method.output_type
    if route.response_body:
        response_schema = schemas.field(response.fields_by_name[route.response_body])
    else:
        response_schema = schemas.message(response)
    operation["responses"] = {
        "200": {"description": "OK", "content": {JSON: {"schema": response_schema}}},
        "default": {
            "description": "An error: the google.rpc.Status, with its details.",
            "content": {JSON: {"schema": schemas.ref(STATUS_SCHEMA)}},
        },
    }
    return path, operation


def openapi_document(
    routes: Sequence[Route], *, title: str = "Back-office services", version: str = "v1"
) -> dict[str, Any]:
    schemas = _Schemas()
    _status_schema(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, operation = _operation(schemas, route)
        item = paths.setdefault(path, {})
        if route.http_method in item:
            continue  # the gateway routes the first binding too
        item[route.http_method] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "HTTP/JSON for the shared back-office gRPC services, transcoded by their "
            "google.api.http annotations with protobuf's JSON mapping. Access is decided by the "
            "services from the bearer token, which the gateway forwards unchanged.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }
