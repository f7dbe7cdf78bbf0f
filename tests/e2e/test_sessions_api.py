"""`/api/v1/sessions` through the real stack: ad-hoc and agent sessions, settings, tools,
files, chat in a session, deletes, and the envelopes of bad input."""

from typing import Any

import httpx
import pytest
from e2e_support import new_agent


async def _session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    created = await client.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    return created.json()["data"]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["request_id"] and error["trace_id"]
    return error


async def test_an_ad_hoc_session_is_created_read_and_listed(client):
    created = await client.post(
        "/api/v1/sessions", json={"settings": {"model": "offline-1"}, "title": "scratch"}
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert created.headers["location"] == f"/api/v1/sessions/{data['id']}"
    assert created.headers["etag"] == '"1"'
    assert (data["agent_id"], data["title"], data["settings"]["model"]) == (
        None,
        "scratch",
        "offline-1",
    )
    assert data["history"] == [] and data["turn_count"] == 0
    read = await client.get(f"/api/v1/sessions/{data['id']}")
    assert read.status_code == 200 and read.json()["data"]["id"] == data["id"]
    listed = (await client.get("/api/v1/sessions", params={"limit": 200})).json()
    assert data["id"] in [s["id"] for s in listed["data"]]
    assert "history" not in listed["data"][0]


async def test_sessions_page_with_a_cursor(client):
    agent_id = await new_agent(client, "sess")
    ids = [(await _session(client, agent_id=agent_id))["id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        params = {"agent_id": agent_id, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/sessions", params=params)).json()
        seen += [s["id"] for s in page["data"]]
        assert page["pagination"]["total_count"] == 3
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    _error(await client.get("/api/v1/sessions", params={"cursor": "junk!"}), 400, "INVALID_REQUEST")


async def test_chat_in_an_ad_hoc_session_keeps_history(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}"
    answer = await client.post(f"{path}/chat", json={"message": "hello there"}, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["response"] == "echo: hello there"
    assert data["conversation_id"] == session["id"] and data["outcome"] == "completed"
    history = (await client.get(path)).json()["data"]["history"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "hello there"),
        ("assistant", "echo: hello there"),
    ]
    assert history[-1]["turn_id"] == data["turn_id"]


async def test_a_settings_patch_reports_changed_and_skipped_fields(client):
    session = await _session(client, settings={"model": "offline-1"})
    path = f"/api/v1/sessions/{session['id']}"
    patched = await client.patch(
        path, json={"model": "offline-1", "system_prompt": "be brief", "concurrency": "enqueue"}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert sorted(body["report"]["changed"]) == ["concurrency", "system_prompt"]
    assert body["report"]["skipped"] == ["model"] and body["report"]["failed"] == []
    assert body["data"]["settings"]["system_prompt"] == "be brief"
    assert body["data"]["version"] == 2


async def test_a_bad_settings_field_is_a_422_with_the_report(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}"
    response = await client.patch(path, json={"provider": "nosuchprovider"})
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details["changed"] == [] and details["failed"]
    assert (await client.get(path)).json()["data"]["version"] == 1  # nothing changed


async def test_a_stale_if_match_is_a_conflict(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}"
    stale = await client.patch(path, json={"model": "offline-1"}, headers={"If-Match": '"9"'})
    _error(stale, 409, "CONCURRENCY_CONFLICT")


async def test_tools_are_replaced_with_put(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}/tools"
    response = await client.put(path, json={"tools": [{"name": "calculator"}]})
    assert response.status_code == 200, response.text
    assert [t["name"] for t in response.json()["data"]["settings"]["tools"]] == ["calculator"]
    _error(await client.put(path, json={"tools": "calculator"}), 422, "VALIDATION_ERROR")
    _error(await client.put(path, json={"tools": [{"name": "rm_rf"}]}), 422, "TOOL_NOT_AVAILABLE")


async def test_a_session_file_is_uploaded_read_downloaded_and_deleted(client):
    session = await _session(client)
    base = f"/api/v1/sessions/{session['id']}/files"
    upload = await client.post(base, files={"file": ("notes.txt", b"hello file", "text/plain")})
    assert upload.status_code == 201, upload.text
    meta = upload.json()["data"]
    assert (meta["name"], meta["content_type"], meta["size"]) == ("notes.txt", "text/plain", 10)
    assert upload.headers["location"] == f"{base}/{meta['id']}"
    assert [f["id"] for f in (await client.get(base)).json()["data"]] == [meta["id"]]
    assert (await client.get(f"{base}/{meta['id']}")).json()["data"]["sha256"] == meta["sha256"]
    content = await client.get(f"{base}/{meta['id']}/content")
    assert content.status_code == 200 and content.content == b"hello file"
    assert content.headers["content-type"].startswith("text/plain")
    deleted = await client.delete(f"{base}/{meta['id']}")
    assert deleted.status_code == 204
    assert (await client.get(base)).json()["data"] == []
    _error(await client.get(f"{base}/{meta['id']}"), 404, "FILE_NOT_FOUND")
    _error(await client.delete(f"{base}/{meta['id']}"), 404, "FILE_NOT_FOUND")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"files": {"file": ("big.txt", b"x" * (512 * 1024 + 1), "text/plain")}},
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            {"files": {"file": ("run.exe", b"MZ", "application/x-msdownload")}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ({"files": {"other": ("a.txt", b"a", "text/plain")}}, 400, "INVALID_REQUEST"),
        (
            {"data": {"file": "not a file"}, "files": {"x": ("a.txt", b"a", "text/plain")}},
            400,
            "INVALID_REQUEST",
        ),
        ({"json": {"file": "abc"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"files": {"file": ("empty.txt", b"", "text/plain")}}, 422, "VALIDATION_ERROR"),
    ],
    ids=["too-large", "bad-type", "missing-field", "field-not-a-file", "json", "empty"],
)
async def test_bad_uploads_get_the_error_envelope(client, kwargs, status, code):
    session = await _session(client)
    response = await client.post(f"/api/v1/sessions/{session['id']}/files", **kwargs)
    _error(response, status, code)


async def test_a_deleted_session_is_gone(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}"
    assert (await client.delete(path)).status_code == 204
    _error(await client.get(path), 404, "SESSION_NOT_FOUND")
    _error(await client.delete(path), 404, "SESSION_NOT_FOUND")
    listed = (await client.get("/api/v1/sessions", params={"limit": 200})).json()["data"]
    assert session["id"] not in [s["id"] for s in listed]


async def test_deleting_all_sessions_of_an_agent_leaves_the_others(client):
    agent_id = await new_agent(client, "sess")
    mine = [(await _session(client, agent_id=agent_id))["id"] for _ in range(2)]
    other = await _session(client)
    response = await client.delete("/api/v1/sessions", params={"agent_id": agent_id})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["deleted"] == 2
    for session_id in mine:
        _error(await client.get(f"/api/v1/sessions/{session_id}"), 404, "SESSION_NOT_FOUND")
    assert (await client.get(f"/api/v1/sessions/{other['id']}")).status_code == 200
    again = await client.delete("/api/v1/sessions", params={"agent_id": agent_id})
    assert again.json()["data"]["deleted"] == 0


async def test_sessions_are_per_namespace(client):
    session = await _session(client)
    other = await client.get(
        f"/api/v1/sessions/{session['id']}", headers={"X-Parley-Namespace": "team-b"}
    )
    _error(other, 404, "SESSION_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/api/v1/sessions", {"json": {"agent_id": "nope"}}, 404, "AGENT_NOT_FOUND"),
        ("POST", "/api/v1/sessions", {"json": {"bogus": 1}}, 422, "VALIDATION_ERROR"),
        (
            "POST",
            "/api/v1/sessions",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/sessions",
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/sessions",
            {"json": {"settings": {"concurrency": "sometimes"}}},
            422,
            "VALIDATION_ERROR",
        ),
        ("GET", "/api/v1/sessions/nope", {}, 404, "SESSION_NOT_FOUND"),
        ("GET", "/api/v1/sessions/" + "x" * 100, {}, 404, "SESSION_NOT_FOUND"),
        ("PATCH", "/api/v1/sessions/nope", {"json": {"model": "m"}}, 404, "SESSION_NOT_FOUND"),
        (
            "POST",
            "/api/v1/sessions/nope/chat",
            {"json": {"message": "hi"}},
            404,
            "SESSION_NOT_FOUND",
        ),
        ("POST", "/api/v1/sessions/nope/cancel", {}, 404, "SESSION_NOT_FOUND"),
        ("GET", "/api/v1/sessions/nope/files", {}, 404, "SESSION_NOT_FOUND"),
        ("GET", "/api/v1/sessions", {"params": {"limit": 0}}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_bad_session_requests_get_the_error_envelope(
    client, method, path, kwargs, status, code
):
    _error(await client.request(method, path, **kwargs), status, code)


async def test_a_session_chat_with_a_bad_body_is_refused_before_the_runtime(client):
    session = await _session(client)
    path = f"/api/v1/sessions/{session['id']}/chat"
    _error(await client.post(path, json={"message": ""}), 422, "VALIDATION_ERROR")
    _error(
        await client.post(path, json={"message": "x", "policy": "shove"}), 422, "VALIDATION_ERROR"
    )
    _error(
        await client.post(path, json={"message": "x", "conversation_id": "y"}),
        422,
        "VALIDATION_ERROR",
    )
    _error(await client.post(f"/api/v1/sessions/{session['id']}/cancel"), 409, "NO_ACTIVE_TURN")
