"""A session's recorded events: `GET /api/v1/sessions/{id}/events` (JSON, cursor-paged) and
`GET /api/v1/sessions/{id}/events.jsonl` (the interaction log, one event per line), both
filtered by time (`since`, `until`) and type (`type`, globs such as `turn.*`).

The events are those of the session's stream (``session-<id>``: its settings, files, turns
and tool calls) read from the event store, in the order they were recorded.
"""

from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Annotated
from typing import Any

from litestar import Response
from litestar import Router
from litestar import get
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import Parameter

from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import session_stream
from parley.edge.controllers.lookups import SESSION_SCOPE
from parley.edge.controllers.lookups import SessionScope
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.edge.http.paging import Paging
from parley.edge.streams.filters import EventFilter
from parley.edge.streams.filters import encode_event
from parley.edge.streams.filters import split_values
from parley.eventstore.port import EventStoreUnavailable

__all__ = [
    "JSONL",
    "EventSelection",
    "Since",
    "TYPE_GLOBS",
    "globs_param",
    "time_param",
    "Types",
    "Until",
    "jsonl_response",
    "log_file_name",
    "parse_time",
    "select_events",
    "session_event_router",
    "session_events",
]

JSONL = "application/x-ndjson"
"""The media type of an interaction log: one JSON event per line."""

_GLOB = r"[A-Za-z0-9_*]+(\.[A-Za-z0-9_*]+)*"
TYPE_GLOBS: dict[str, str] = {
    "type": "string",
    "pattern": rf"^\s*({_GLOB})?\s*(,\s*({_GLOB})?\s*)*$",
}
"""One `type` value: dotted globs (any case), comma-separated."""


def globs_param(description: str) -> Any:
    """An optional query parameter of event type globs (each value: :data:`TYPE_GLOBS`)."""
    return Parameter(required=False, description=description, schema_extra={"items": TYPE_GLOBS})


def time_param(description: str) -> Any:
    """An optional query parameter holding an ISO-8601 time."""
    return Parameter(required=False, description=description, schema_extra={"format": "date-time"})


Types = Annotated[
    list[str] | None,
    globs_param("Event type globs (`turn.*`, `tool.called`), repeatable or comma-separated."),
]
Since = Annotated[str | None, time_param("ISO-8601 time: events at or after it.")]
Until = Annotated[str | None, time_param("ISO-8601 time: events before it.")]


def parse_time(field: str, raw: str | None) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset; none means UTC), or None when absent.

    Raises:
        ParleyError: ``422 VALIDATION_ERROR`` naming ``field`` when it is not a time.
    """
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field, f"expected an ISO-8601 time, got {raw[:40]!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class EventSelection:
    """Which of a session's events a request wants: type globs and a time window."""

    def __init__(
        self,
        types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        until_field: str = "query.until",
    ) -> None:
        """Raises:
        FilterError: ``400`` for a type that is not a dotted glob.
        ParleyError: ``422`` naming ``until_field`` when ``since`` is not before ``until``.
        """
        self.types = [t.lower() for t in split_values(types)]
        self._filter = EventFilter.parse(types=self.types)
        if since is not None and until is not None and since >= until:
            raise invalid(until_field, "must be after since")
        self.since, self.until = since, until

    @classmethod
    def of_query(
        cls,
        types: list[str] | None,
        since: str | None,
        until: str | None,
        *,
        names: tuple[str, str] = ("since", "until"),
    ) -> "EventSelection":
        """The selection of a query whose time parameters are called ``names``."""
        since_field, until_field = (f"query.{name}" for name in names)
        return cls(
            types or (),
            parse_time(since_field, since),
            parse_time(until_field, until),
            until_field=until_field,
        )

    def select(self, events: Iterable[Event]) -> list[Event]:
        """The events it wants, in recorded order."""
        since, until, matches = self.since, self.until, self._filter.matches
        return [
            e
            for e in events
            if (since is None or e.time >= since)
            and (until is None or e.time < until)
            and matches(e)
        ]


async def session_events(session: SessionScope) -> list[Event]:
    """Every recorded event of the live session, in order.

    Raises:
        ParleyError: ``404 SESSION_NOT_FOUND``; ``503`` when the store cannot answer.
    """
    session.live()
    try:
        return await session.edge.store.read(session_stream(session.id))
    except EventStoreUnavailable as exc:
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"}
        ) from None


def log_file_name(session_id: str) -> str:
    """The name a session's interaction log is downloaded as."""
    return f"{session_stream(session_id)}.jsonl"


def jsonl_response(session_id: str, events: Iterable[Event]) -> Response[bytes]:
    """``events`` as an interaction log download: one JSON envelope per line."""
    body = b"".join(encode_event(e) + b"\n" for e in events)
    return Response(
        body,
        media_type=JSONL,
        headers={"Content-Disposition": f'attachment; filename="{log_file_name(session_id)}"'},
    )


def select_events(
    type: Types = None,  # noqa: A002 - the query parameter's name
    since: Since = None,
    until: Until = None,
) -> EventSelection:
    """The dependency ``selection``: the `type`, `since` and `until` of a request."""
    return EventSelection.of_query(type, since, until)


@get(
    "/{session_id:str}/events",
    summary="List a session's events",
    description="The session's recorded events (settings, files, turns, tool calls), oldest"
    " first, as CloudEvents envelopes. `since` (inclusive) and `until` (exclusive) are ISO-8601"
    " times; `type` takes globs (`turn.*`), repeatable or comma-separated.",
    responses=error_responses(400, 404, 422, 503),
)
async def list_session_events(
    session: NamedDependency[SessionScope],
    selection: NamedDependency[EventSelection],
    paging: NamedDependency[Paging],
) -> Page[Event]:
    """A page of the session's events that pass the filters."""
    events = selection.select(await session_events(session))
    return paging.page(events, lambda e: f"{e.version:020d}")


@get(
    "/{session_id:str}/events.jsonl",
    summary="Download a session's interaction log (JSONL)",
    description="Every recorded event of the session (or those the filters keep, as for"
    " `GET …/events`), one CloudEvents envelope per line, oldest first.",
    media_type=JSONL,
    responses=error_responses(400, 404, 422, 503),
)
async def download_session_events(
    session: NamedDependency[SessionScope], selection: NamedDependency[EventSelection]
) -> Response[bytes]:
    """The session's events as JSON Lines."""
    return jsonl_response(session.id, selection.select(await session_events(session)))


session_event_router = Router(
    path="/api/v1/sessions",
    route_handlers=[list_session_events, download_session_events],
    dependencies={**SESSION_SCOPE, "selection": Provide(select_events, sync_to_thread=False)},
    tags=["sessions"],
)
"""The routes of a session's recorded events."""
