"""The edge's OpenAPI additions and its `OPTIONS` fix, on small Litestar apps of their own."""

from collections.abc import AsyncIterator
from typing import Annotated
from typing import Any

import msgspec
from litestar import Litestar
from litestar import Router
from litestar import get
from litestar import patch
from litestar import post
from litestar.params import FromPath
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent
from litestar.testing import TestClient

from parley.edge.http.allow import fix_allow
from parley.edge.http.openapi import document_bodies
from parley.edge.http.openapi import document_responses
from parley.edge.http.openapi import document_security
from parley.edge.http.params import optional_header


class Range(msgspec.Struct):
    low: int | float
    high: int | float | None = None


class Body(msgspec.Struct, forbid_unknown_fields=True):
    name: str


@get("/thing/{thing_id:str}", tags=["things"])
async def read_thing(
    thing_id: FromPath[str],
    namespace: Annotated[str | None, QueryParameter(name="namespace", required=False)] = None,
    if_match: Annotated[str | None, optional_header("If-Match", "Expected version.")] = None,
) -> Range:
    return Range(low=1)


@patch("/thing/{thing_id:str}", opt={"body": Body})
async def change_thing(thing_id: FromPath[str]) -> None:
    return None


@get("/feed")
async def feed() -> ServerSentEvent:
    async def nothing() -> AsyncIterator[str]:
        for _ in ():
            yield ""

    return ServerSentEvent(nothing())


@post("/other", opt={"body": Body})
async def other() -> None:
    return None


def _document() -> dict[str, Any]:
    app = Litestar(
        [Router("/", route_handlers=[read_thing, change_thing]), feed, other],
        on_startup=[fix_allow, document_bodies, document_security, document_responses],
    )
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/schema/openapi.json").json()
        document["allow"] = client.options("/thing/1").headers["allow"]
    return document


def test_options_names_every_method_of_a_path_served_by_several_handlers() -> None:
    allowed = {method.strip() for method in _document()["allow"].split(",")}
    assert allowed == {"GET", "PATCH", "OPTIONS"}


def test_a_union_of_integer_and_number_is_any_of_so_a_whole_number_fits() -> None:
    low = _document()["components"]["schemas"]["Range"]["properties"]["low"]
    assert "oneOf" not in low
    assert {"type": "integer"} in low["anyOf"]


def test_every_operation_documents_the_shared_errors_with_the_envelope() -> None:
    operation = _document()["paths"]["/thing/{thing_id}"]["get"]
    assert {"400", "401", "403", "422", "429", "503"} <= set(operation["responses"])
    schema = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    body = _document()["paths"]["/thing/{thing_id}"]["patch"]["responses"]
    assert {"413", "415", "422"} <= set(body)


def test_shared_parameters_carry_their_rules() -> None:
    parameters = _document()["paths"]["/thing/{thing_id}"]["get"]["parameters"]
    rules = {p["name"]: p["schema"] for p in parameters}
    assert rules["namespace"]["pattern"].startswith("^[a-z0-9]")
    assert "pattern" in rules["If-Match"]


def test_an_sse_handler_documents_text_event_stream() -> None:
    content = _document()["paths"]["/feed"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]


def test_a_body_schema_refuses_unknown_fields_like_its_decoder() -> None:
    assert _document()["components"]["schemas"]["Body"]["additionalProperties"] is False
