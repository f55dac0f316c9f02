"""HTTP routes read from the `google.api.http` annotations of the service descriptors.

A path template (`/v1/{name=organisations/*/suppliers/*}:debar`) becomes a regular
expression for matching and a list of segments for the OpenAPI document. Nothing here
knows any particular RPC: a new annotated method is a new route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# One path segment; a colon is left out so that a custom method's `:verb` is never taken
# for part of a resource id.
_SEGMENT = r"[^/:]+"
_SEGMENTS = r"[^:]+"


class TemplateError(ValueError):
    """A path template the gateway cannot read (a mistake in a proto)."""


@dataclass(frozen=True)
class Segment:
    """One segment of an expanded template: a literal, or a wildcard that a variable binds."""

    literal: str | None  # None for `*` and `**`
    multi: bool = False  # `**`
    variable: str | None = None  # the field path the wildcard belongs to


@dataclass(frozen=True)
class Variable:
    field_path: str
    pattern: str  # the template of its value, e.g. organisations/*/suppliers/*


@dataclass(frozen=True)
class PathTemplate:
    template: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str | None
    regex: re.Pattern[str] = field(compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {v.field_path: found.group(f"v{i}") for i, v in enumerate(self.variables)}


def _split_top(text: str) -> list[str]:
    """Split on `/` outside braces."""
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _variable(template: str, name: str, pattern: str, segments: list[Segment]) -> list[str]:
    """The segments and regular expression pieces of one `{name=pattern}`."""
    sub = []
    for piece in pattern.split("/"):
        if piece == "*":
            segments.append(Segment(None, variable=name))
            sub.append(_SEGMENT)
        elif piece == "**":
            segments.append(Segment(None, multi=True, variable=name))
            sub.append(_SEGMENTS)
        elif piece and "{" not in piece and "*" not in piece:
            segments.append(Segment(piece, variable=name))
            sub.append(re.escape(piece))
        else:
            raise TemplateError(f"{template!r}: bad variable pattern {pattern!r}")
    return sub


def parse_template(template: str) -> PathTemplate:
    if not template.startswith("/"):
        raise TemplateError(f"{template!r}: a path template starts with /")
    body = template[1:]
    verb = None
    last_close = body.rfind("}")
    colon = body.rfind(":")
    if colon > last_close:
        body, verb = body[:colon], body[colon + 1 :]
    segments: list[Segment] = []
    variables: list[Variable] = []
    regex = ""
    for part in _split_top(body):
        if part.startswith("{"):
            if not part.endswith("}"):
                raise TemplateError(f"{template!r}: unclosed variable")
            name, _, pattern = part[1:-1].partition("=")
            index = len(variables)
            variables.append(Variable(name, pattern or "*"))
            sub = _variable(template, name, pattern or "*", segments)
            regex += f"/(?P<v{index}>{'/'.join(sub)})"
        elif part == "*":
            segments.append(Segment(None))
            regex += "/" + _SEGMENT
        elif part == "**":
            segments.append(Segment(None, multi=True))
            regex += "/" + _SEGMENTS
        elif part and "{" not in part and "}" not in part:
            segments.append(Segment(part))
            regex += "/" + re.escape(part)
        else:
            raise TemplateError(f"{template!r}: bad segment {part!r}")
    if verb is not None:
        regex += ":" + re.escape(verb)
    return PathTemplate(template, tuple(segments), tuple(variables), verb, re.compile(regex))


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    service: ServiceDescriptor
    method: MethodDescriptor
    http_method: str  # lower case
    template: PathTemplate
    body: str  # "", "*" or a top-level field name
    response_body: str

    @property
    def rpc_path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        return f"{self.service.name}_{self.method.name}"


def _bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def _route(service: ServiceDescriptor, method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route | None:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return None
    if kind == "custom":
        verb, path = rule.custom.kind.lower(), rule.custom.path
    else:
        verb, path = kind, getattr(rule, kind)
    return Route(service, method, verb, parse_template(path), rule.body, rule.response_body)


def routes_of(descriptors: Sequence[ServiceDescriptor]) -> list[Route]:
    """Every HTTP binding of every unary method of these services."""
    found: list[Route] = []
    for service in descriptors:
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            for rule in _bindings(options.Extensions[annotations_pb2.http]):
                route = _route(service, method, rule)
                if route is not None:
                    found.append(route)
    return found
