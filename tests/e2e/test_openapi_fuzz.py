"""The edge's OpenAPI document, checked against the edge itself.

Schemathesis generates requests from the document the edge serves (`/schema/openapi.json`)
for every operation: requests the document calls valid and requests it calls invalid, a
bounded number of each per operation (derandomized, so a run is repeatable), with random ids
and, for the routes of one, with an agent, session, task and cluster made first (deletions
run last). They are sent with the admin key to a stack of this module's own. Each answer
must not be a server error, must carry a status code and content type the document lists for
the operation, and must match the schema it documents; a valid request without a body must
not be refused as invalid (400/422). Generated requests carry no `cursor` (a cursor is
opaque: only one the API issued is valid) and never touch the key the run holds. Every
`$ref` of the document resolves, and `OPTIONS` and a 405 name every method of a path.
"""

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from e2e_support import body_of
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core import NOT_SET
from schemathesis.core.failures import Failure
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks
from tests_support import admin_key

from parley.devstack.stack import Stack

EXAMPLES = 10
"""Requests generated per operation."""
STREAM_S = 3.0
"""How long an event stream is read (it may never end)."""
REQUEST_S = 30.0
"""A request's timeout (a loaded machine answers slowly)."""

_METHODS = {"get", "put", "post", "delete", "patch"}
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
ACCEPTANCE: list[CheckFunction] = [openapi_checks.positive_data_acceptance]
"""Checked for requests without a body: some bodies have rules across fields (`receivers` or
`capability`; `agent_id` or `cluster`) or beyond a schema (an expiry in the future)."""
_RESUME = "`last_event_id` must name the `turn_id` it resumes"
_WINDOW = "`until` (or `end_time`) must be after `since` (or `start_time`)"
ACROSS_PARAMETERS = {
    "GET /api/v1/agents/{agent_id}/memory/search": "`q` (or its alias `query`) is required",
    "GET /api/v1/agents/{agent_id}/stream": _RESUME,
    "GET /api/v1/agents/{agent_id}/chat/stream": _RESUME,
    "GET /api/v1/sessions/{session_id}/chat/stream": _RESUME,
    "GET /api/v1/sessions/{session_id}/events": _WINDOW,
    "GET /api/v1/sessions/{session_id}/events.jsonl": _WINDOW,
    "GET /api/v1/events/{session_id}": _WINDOW,
}
"""Operations whose parameters have a rule across them that a schema cannot state: a request
may fit the document and be refused, so :data:`ACCEPTANCE` is not checked for them (their
answers are, like every other)."""


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Authentication on, as in production; a rate limit the fuzzer does not reach."""
    return {"PARLEY_AUTH": "on", "PARLEY_RATE_LIMIT": "100000/1s"}


def _methods(allow: str | None) -> set[str]:
    """The methods an `Allow` header names."""
    return {method.strip() for method in (allow or "").split(",") if method.strip()}


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolves(document: dict[str, Any], ref: str) -> bool:
    """Whether the local JSON pointer ``ref`` names a part of ``document``."""
    if not ref.startswith("#/"):
        return False
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


async def test_every_ref_of_the_openapi_document_resolves(http: httpx.AsyncClient) -> None:
    document = body_of(await http.get("/schema/openapi.json"))
    refs = set(_refs(document))
    assert refs, "the document uses no $ref at all"
    assert sorted(ref for ref in refs if not _resolves(document, ref)) == []


async def test_options_and_405_name_every_method_a_path_documents(
    http: httpx.AsyncClient,
) -> None:
    document = body_of(await http.get("/schema/openapi.json"))
    wrong = {}
    for path, item in document["paths"].items():
        documented = {method.upper() for method in item if method in _METHODS} | {"OPTIONS"}
        url = re.sub(r"\{[^}]+\}", "1", path)
        allowed = _methods((await http.options(url)).headers.get("allow"))
        if allowed - {"HEAD"} != documented:
            wrong[f"OPTIONS {path}"] = allowed
        refused = await http.request("TRACE", url)
        if refused.status_code != 405 or _methods(refused.headers.get("allow")) != allowed:
            wrong[f"TRACE {path}"] = f"{refused.status_code} {refused.headers.get('allow')}"
    assert wrong == {}


@pytest.mark.timeout(480)  # ~110 s on a quiet 2-core machine: 120 s left no room for load
async def test_generated_requests_get_the_answers_the_document_promises(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    document = body_of(await http.get("/schema/openapi.json"))
    key = admin_key(own_stack)
    own_id = body_of(await http.get("/api/v1/keys"))["data"][0]["key_id"]
    failures = await asyncio.to_thread(_fuzz, document, own_stack.edge_url, key, own_id)
    assert failures == [], "\n\n".join(failures)


def _resources(session: requests.Session, base_url: str) -> dict[str, str]:
    """A running agent, a session with it, a task and a cluster of the default namespace, by
    the path parameter that names them: generated requests use them too (deletions last), so
    that successes are checked against their schemas, not only 404s."""
    api = f"{base_url}/api/v1"

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = session.post(f"{api}/{path}", json=body, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    agent_id = made("agents", {"name": "fuzzed"})["id"]
    assert session.post(f"{api}/agents/{agent_id}/start", timeout=30).status_code == 200
    cluster = {"apiVersion": "parley.dev/v1", "kind": "AgentCluster"}
    cluster |= {"metadata": {"name": "fuzzed"}, "spec": {"agents": [{"name": "member"}]}}
    return {
        "agent_id": agent_id,
        "session_id": made("sessions", {"agent_id": agent_id})["id"],
        "task_id": made("tasks", {"name": "fuzzed"})["task_id"],
        "name": made("clusters", cluster)["name"],
    }


def _fuzz(document: dict[str, Any], base_url: str, key: str, own_key_id: str) -> list[str]:
    """Run every operation of ``document`` against ``base_url``; each failure, described."""
    config = schemathesis.Config.from_dict(
        {
            "max-stream-events": 2,
            "generation": {"with-security-parameters": False, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    failures: list[str] = []
    with requests.Session() as session:
        session.headers["X-API-Key"] = key
        known = _resources(session, base_url)
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
            names = {p.name for p in operation.path_parameters}
            rounds: list[tuple[GenerationMode, dict[str, str] | None]] = [
                (GenerationMode.POSITIVE, None),
                (GenerationMode.NEGATIVE, None),
            ]
            clusters = operation.path.startswith("/api/v1/clusters/{name}")
            usable = known.keys() if clusters else known.keys() - {"name"}
            if names and names <= usable:
                rounds.append((GenerationMode.POSITIVE, {n: known[n] for n in names}))
            for mode, path in rounds:
                found, sent = _fuzz_operation(operation, mode, path, session, base_url, own_key_id)
                failures.extend(found)
                if not sent and mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no request was sent")
    return failures


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    path: dict[str, str] | None,
    session: requests.Session,
    base_url: str,
    own_key_id: str,
) -> tuple[list[str], int]:
    """The failures of one operation's generated requests of ``mode`` (valid or invalid per
    the document), on the resources ``path`` names when given (the first failure per check
    and status), and how many were sent."""
    found: dict[str, str] = {}
    sent = 0
    streams = "text/event-stream" in json.dumps(operation.definition.raw.get("responses"))
    timeout = STREAM_S if streams else REQUEST_S
    fixed: dict[str, Any] = {}
    if path is not None:  # the resources are in the default namespace
        fixed["headers"] = {"X-Parley-Namespace": "default"}
        if "namespace" in {p.name for p in operation.query}:
            fixed["query"] = {"namespace": "default"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path, **fixed))
    def run(case: Any) -> None:
        nonlocal sent
        if case.path_parameters and own_key_id in case.path_parameters.values():
            return  # revoking or rotating the key the run holds ends the run
        if case.query:
            case.query.pop("cursor", None)  # opaque: only one the API issued is a cursor
        response = case.call(base_url=base_url, session=session, timeout=timeout)
        sent += 1
        try:
            valid = mode is GenerationMode.POSITIVE and case.body is NOT_SET
            valid = valid and operation.label not in ACROSS_PARAMETERS
            checks = CHECKS + ACCEPTANCE if valid else CHECKS
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                _note(found, case, response, failure)
        except Failure as failure:
            _note(found, case, response, failure)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing of the operation can be invalid
    return list(found.values()), sent


def _note(found: dict[str, str], case: Any, response: Any, failure: Failure) -> None:
    """Keep the first failure of each kind and status per operation, with how to repeat it."""
    kind = f"{failure.title} {response.status_code}"
    body = response.content[:400].decode(errors="replace")
    found.setdefault(
        kind,
        f"{case.operation.label} -> {response.status_code}: {failure.title}\n"
        f"{failure.message.strip()}\n{body}\n{case.as_curl_command()}",
    )


async def test_prometheus_metrics_name_their_charset_once(http: httpx.AsyncClient) -> None:
    answer = await http.get("/metrics")
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
