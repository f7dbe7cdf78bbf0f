"""OpenAPI: the docs, plus request bodies for handlers that decode their own bodies.

Handlers read raw bytes (see :mod:`parley.edge.http.body`), so Litestar cannot see their body
types; each declares it as ``opt={"body": Struct}`` (``"body_optional": True`` when it may be
empty) and :func:`document_bodies` adds it.
"""

from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.openapi.spec import OpenAPIMediaType
from litestar.openapi.spec import Reference
from litestar.openapi.spec import RequestBody
from litestar.openapi.spec import SecurityScheme

from parley.contracts.clusters import ClusterManifest
from parley.contracts.registry import AgentSpec

__all__ = ["SECURITY", "document_bodies", "document_security", "openapi_config"]

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
    types = sorted({body for _, _, body, _ in handlers}, key=lambda t: t.__name__)
    (_, components) = msgspec.json.schema_components(types, ref_template=_REF)
    schemas = openapi.components.schemas if openapi.components.schemas is not None else {}
    for name, schema in components.items():
        schemas.setdefault(name, schema)  # raw JSON Schema: valid in OpenAPI 3.1
    openapi.components.schemas = schemas
    for path, method, body, optional in handlers:
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if operation is None:
            continue
        ref = Reference(ref=_REF.format(name=body.__name__))
        content = {"application/json": OpenAPIMediaType(schema=ref)}
        if body is AgentSpec:
            content["application/toml"] = OpenAPIMediaType(schema=ref)
        if body is ClusterManifest:
            content["application/yaml"] = OpenAPIMediaType(schema=ref)
        operation.request_body = RequestBody(content=content, required=not optional)


def document_security(app: Litestar) -> None:
    """Every operation but the health probes names its security (the docs UI sends a key)."""
    for item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            public = _PUBLIC_TAGS.intersection(operation.tags or ())
            operation.security = [] if public else list(SECURITY)
