"""OpenAPI: the docs, plus what Litestar cannot see from the handlers' signatures.

- Request bodies (:func:`document_bodies`). Handlers read raw bytes (see
  :mod:`parley.edge.http.body`), so Litestar cannot see their body types; each declares it as
  ``opt={"body": Struct}`` (``"body_optional": True`` when it may be empty).
- Security (:func:`document_security`): every operation but the health probes.
- What every route may answer (:func:`document_responses`): the errors the app-wide guards
  and middleware give (400 for an unknown query parameter, 401/403 without a fitting
  credential, 422 for an invalid namespace or query value, 429 and 503 from the rate limits,
  413 for a body over the limit, 415 for a body of another type), the rules of the
  parameters every route shares (the namespace, `If-Match`, `Idempotency-Key`), and the
  media type of a success that is not JSON: `text/event-stream` for a handler returning
  ``ServerSentEvent``, or the types a handler lists in ``opt={"produces": (...)}``; and the
  `multipart/form-data` body of a handler that reads a file (``opt={"upload": "<field>"}``).
- Python unions are ``anyOf``, not ``oneOf``: a value may fit several members (a whole number
  is an ``integer`` and a ``number``), and ``oneOf`` refuses a value that fits two.
"""

from dataclasses import fields
from dataclasses import is_dataclass
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.openapi.spec import OpenAPIMediaType
from litestar.openapi.spec import OpenAPIResponse
from litestar.openapi.spec import OpenAPIType
from litestar.openapi.spec import Operation
from litestar.openapi.spec import Parameter
from litestar.openapi.spec import Reference
from litestar.openapi.spec import RequestBody
from litestar.openapi.spec import Schema
from litestar.openapi.spec import SecurityScheme
from litestar.response import ServerSentEvent

from parley.contracts.clusters import ClusterManifest
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.registry import AgentSpec
from parley.edge.http.errors import ErrorEnvelope

__all__ = [
    "PRODUCES",
    "SECURITY",
    "UPLOAD",
    "document_bodies",
    "document_responses",
    "document_security",
    "openapi_config",
]

PRODUCES = "produces"
"""The handler ``opt`` key listing the media types of its success when it is not JSON."""
UPLOAD = "upload"
"""The handler ``opt`` key naming the `multipart/form-data` field a handler reads a file from."""

_REF = "#/components/schemas/{name}"
SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}, {"BearerAuth": []}]
"""Either credential: an API key in `X-API-Key`, or `Authorization: Bearer <key or JWT>`."""
_SCHEMES = {
    "ApiKeyAuth": SecurityScheme(
        type="apiKey",
        name="X-API-Key",
        security_scheme_in="header",
        description="An API key (`pk_…`): the bootstrap admin key, or one made with"
        " `POST /api/v1/keys`.",
    ),
    "BearerAuth": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A JWT of the configured identity provider, or an API key as a bearer token.",
    ),
}
_PUBLIC_TAGS = {"health"}


def openapi_config() -> OpenAPIConfig:
    """OpenAPI 3.1 at `/schema/openapi.json`; Scalar at `/schema`, Swagger at `/schema/swagger`."""
    return OpenAPIConfig(
        title="Parley API",
        version="1",
        description="REST, SSE and WebSocket surface of Parley. Errors use the envelope"
        ' `{"error": {"code", "message", "details", "request_id", "trace_id"}}`.',
        path="/schema",
        components=Components(security_schemes=dict(_SCHEMES)),
        security=SECURITY,
        render_plugins=[ScalarRenderPlugin(path="/"), SwaggerRenderPlugin(path="/swagger")],
    )


def document_bodies(app: Litestar) -> None:
    """Add each self-decoding handler's body type to the app's OpenAPI document."""
    handlers: list[tuple[str, str, type[Any], bool]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and (body := handler.opt.get("body")):
                optional = bool(handler.opt.get("body_optional"))
                handlers.extend(
                    (route.path_format, method.lower(), body, optional)
                    for method in handler.http_methods
                )
    if not handlers:
        return
    openapi = app.openapi_schema
    types = sorted({body for _, _, body, _ in handlers}, key=lambda t: t.__qualname__)
    (refs, components) = msgspec.json.schema_components(types, ref_template=_REF)
    ref_of = {body: ref["$ref"] for body, ref in zip(types, refs, strict=True)}
    schemas = openapi.components.schemas if openapi.components.schemas is not None else {}
    for name, schema in components.items():
        schemas[name] = schema  # msgspec's, which decodes them (Litestar's omits unknown fields)
    openapi.components.schemas = schemas
    for path, method, body, optional in handlers:
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if operation is None:
            continue
        ref = Reference(ref=ref_of[body])  # two types of one name get two components
        content = {"application/json": OpenAPIMediaType(schema=ref)}
        if body is AgentSpec:
            content["application/toml"] = OpenAPIMediaType(schema=ref)
        if body is ClusterManifest:
            content["application/yaml"] = OpenAPIMediaType(schema=ref)
        operation.request_body = RequestBody(content=content, required=not optional)


def document_security(app: Litestar) -> None:
    """Every operation but the health probes names its security (the docs UI sends a key)."""
    for item in (app.openapi_schema.paths or {}).values():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            public = _PUBLIC_TAGS.intersection(operation.tags or ())
            operation.security = [] if public else list(SECURITY)


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SSE = "text/event-stream"
_TEXT = Schema(type=OpenAPIType.STRING)
_SSE_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    description="One Server-Sent Event: its `event` name, `data` (JSON text), `id`, `retry`.",
    properties={
        "event": Schema(type=OpenAPIType.STRING),
        "data": Schema(type=OpenAPIType.STRING),
        "id": Schema(type=OpenAPIType.STRING),
        "retry": Schema(type=OpenAPIType.INTEGER),
    },
)
"""A `text/event-stream` answer, event by event (as OpenAPI 3.2 and schemathesis read one)."""
_EVENT_ID = r"^([^:]+:)?[0-9]{1,12}$"
"""An SSE frame id of a turn: `<turn_id>:<seq>`, or a bare `<seq>`."""
_PARAMETERS: dict[tuple[str, str], Schema] = {
    ("query", "namespace"): Schema(type=OpenAPIType.STRING, pattern=NAMESPACE_PATTERN),
    ("header", "X-Parley-Namespace"): Schema(type=OpenAPIType.STRING, pattern=NAMESPACE_PATTERN),
    ("header", "If-Match"): Schema(type=OpenAPIType.STRING, pattern=r'^(\*|(W/)?"?[0-9]{1,18}"?)$'),
    ("header", "Idempotency-Key"): Schema(type=OpenAPIType.STRING, pattern=r"^[\x21-\x7e]{1,255}$"),
    ("header", "Last-Event-ID"): Schema(type=OpenAPIType.STRING, pattern=_EVENT_ID),
    ("query", "last_event_id"): Schema(type=OpenAPIType.STRING, pattern=_EVENT_ID),
}
"""The rules of the parameters routes share (their handlers check them, not Litestar)."""
_ERRORS = {
    400: "Invalid request: an unknown query parameter, a malformed header or cursor.",
    401: "No valid credential.",
    403: "The credential may not do this, or not in this namespace.",
    413: "The body is over the size limit.",
    415: "The body is of a media type the route does not take.",
    422: "Invalid input (body, query, namespace); `details.errors[]` names each field.",
    429: "Over the caller's rate limit (`Retry-After` says when to try again).",
    503: "A service the request needs is unavailable; try again.",
}


def document_responses(app: Litestar) -> None:
    """Add what every route may answer, and its shared parameters' rules (see the module)."""
    openapi = app.openapi_schema
    schemas = openapi.components.schemas if openapi.components.schemas is not None else {}
    (refs, components) = msgspec.json.schema_components([ErrorEnvelope], ref_template=_REF)
    for name, schema in components.items():
        schemas.setdefault(name, schema)
    openapi.components.schemas = schemas
    envelope = Reference(ref=refs[0]["$ref"])
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            item = (openapi.paths or {}).get(route.path_format)
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None) if item is not None else None
                if operation is not None:
                    _document_operation(operation, handler, envelope)
    _any_of(openapi)


def _document_operation(
    operation: Operation, handler: HTTPRouteHandler, envelope: Reference
) -> None:
    responses = operation.responses if operation.responses is not None else {}
    produces: tuple[str, ...] = tuple(handler.opt.get(PRODUCES, ()))
    if handler.parsed_fn_signature.return_type.annotation is ServerSentEvent:
        produces = (_SSE,)
    if produces:
        for status, response in responses.items():
            if status.startswith("2") and isinstance(response, OpenAPIResponse):
                response.content = {
                    kind: OpenAPIMediaType(schema=_SSE_EVENT if kind == _SSE else _TEXT)
                    for kind in produces
                }
    if field := handler.opt.get(UPLOAD):
        operation.request_body = _upload(field)
    names = set()
    for parameter in operation.parameters or ():
        if isinstance(parameter, Parameter):
            names.add((parameter.param_in, parameter.name))
            rule = _PARAMETERS.get((parameter.param_in, parameter.name))
            if rule is not None:
                parameter.schema = rule
    codes = {400}
    if operation.security:
        codes.update((401, 403, 429, 503))
    if any(where == "query" for where, _ in names) or ("header", "X-Parley-Namespace") in names:
        codes.add(422)  # an invalid namespace, or query value
    if operation.request_body is not None:
        codes.update((413, 415, 422))
    error = {"application/json": OpenAPIMediaType(schema=envelope)}
    for code in sorted(codes):
        responses.setdefault(str(code), OpenAPIResponse(description=_ERRORS[code], content=error))
    for status, response in responses.items():
        if status >= "4" and isinstance(response, OpenAPIResponse):
            response.content = error  # every error is the envelope (not Litestar's default)
    operation.responses = responses


def _upload(field: str) -> RequestBody:
    """A `multipart/form-data` body carrying a non-empty file in ``field``."""
    file = Schema(type=OpenAPIType.STRING, content_media_type="application/octet-stream")
    form = Schema(type=OpenAPIType.OBJECT, properties={field: file}, required=[field])
    content = {"multipart/form-data": OpenAPIMediaType(schema=form)}
    return RequestBody(content=content, required=True)


def _any_of(node: Any) -> None:
    """Every ``oneOf`` without a discriminator under ``node`` made an ``anyOf``."""
    if isinstance(node, Schema):
        if node.one_of is not None and node.discriminator is None:
            node.any_of, node.one_of = node.one_of, None
    if isinstance(node, dict):
        if "oneOf" in node and "discriminator" not in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _any_of(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _any_of(value)
    elif is_dataclass(node) and not isinstance(node, type):
        for field in fields(node):
            _any_of(getattr(node, field.name))
