"""A loopback OTLP/HTTP traces receiver: what Jaeger's collector receives on :4318.

Decodes each ``POST /v1/traces`` body as the protobuf ``ExportTraceServiceRequest``
(``opentelemetry-proto``) and keeps every span, flattened, for a test to read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from aiohttp import web
from loopback import Loopback
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class Span:
    """One received span."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)
    """(trace id, span id) of each linked span."""


class OtlpReceiver(Loopback):
    """``POST /v1/traces`` on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        super().__init__(app)

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf", request.content_type
        export = ExportTraceServiceRequest.FromString(await request.read())
        self.requests += 1
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=KINDS[span.kind],
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=[(ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links],
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def trace(self, trace_id: str) -> list[Span]:
        """The spans received so far of ``trace_id``."""
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for(
        self, trace_id: str, caller_span: str, *names: str, within: float = 20.0
    ) -> list[Span]:
        """The spans of ``trace_id`` once a span of each of ``names`` has arrived and every
        span's parent has too, but the root's: ``caller_span``, never exported here."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            spans = self.trace(trace_id)
            seen = {s.name for s in spans}
            ids = {s.span_id for s in spans}
            orphans = {s.parent_id for s in spans} - ids
            if all(name in seen for name in names) and orphans == {caller_span}:
                return spans
            if loop.time() > deadline:
                raise AssertionError(
                    f"trace {trace_id}: no span named {sorted(set(names) - seen)} within "
                    f"{within}s; received {sorted(seen)}"
                )
            await asyncio.sleep(0.1)
