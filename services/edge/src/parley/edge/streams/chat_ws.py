"""`/api/v1/agents/{id}/ws`: chat with an agent over one WebSocket.

Client → server (JSON text frames)::

    {"type": "message", "message": "hi", "conversation_id"?, "context"?, "files"?, "policy"?}
    {"type": "cancel", "conversation_id"?, "turn_id"?}
    {"type": "ping"}

Server → client: each turn's frames as ``{"type", "seq", "turn_id", "data"}`` (``start``,
``token``, ``plan``, ``tool_call``, ``tool_result``, then ``end`` or ``error``), ``pong``, and
``{"type": "error", "data": {"code", "message", "details"}}`` for refused input. The socket
keeps its conversation: after the first turn, messages without ``conversation_id`` continue it.
A bad frame gets an ``error`` frame and the socket stays open. The handshake counts against
the caller's general rate limit, and each ``message`` against its model rate limit
(``PARLEY_MODEL_RATE_LIMIT``, shared with the model-calling routes): one over it gets an
``error`` frame ``RATE_LIMITED`` (``details.retry_after_s``) and starts no turn.
"""

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import WebSocket
from litestar import websocket
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import WS_1008_POLICY_VIOLATION

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.runtime import CancelTurn
from parley.edge.controllers.conversations import check_conversation
from parley.edge.controllers.lookups import require_agent
from parley.edge.controllers.turns import CancelBody
from parley.edge.controllers.turns import ChatBody
from parley.edge.controllers.turns import chat_command
from parley.edge.dependencies import NAMESPACE
from parley.edge.dependencies import SOCKET_WRITES
from parley.edge.dependencies import Writes
from parley.edge.http.auth import ACTION
from parley.edge.http.body import BodyError
from parley.edge.http.body import decode_json
from parley.edge.http.errors import error_details
from parley.edge.http.limits import count_model_use
from parley.edge.streams.turn import client_frame
from parley.edge.streams.turn import start_turn
from parley.edge.streams.ws import frame_bytes
from parley.identity.principal import Action

__all__ = ["MAX_CHAT_FRAME_BYTES", "chat_ws_routes"]

MAX_CHAT_FRAME_BYTES = 1_048_576
"""Largest client frame accepted."""


class SendMessage(ChatBody, tag="message", tag_field="type", forbid_unknown_fields=True):
    """A user message: one turn (the body of `POST /agents/{id}/chat`)."""


class Cancel(CancelBody, tag="cancel", tag_field="type", forbid_unknown_fields=True):
    """Cancel the conversation's running turn."""


class Ping(msgspec.Struct, tag="ping", tag_field="type", forbid_unknown_fields=True):
    """Ask for a `pong`."""

    id: str | None = None


ClientFrame = SendMessage | Cancel | Ping
_encode = msgspec.json.encode


@websocket(
    "/api/v1/agents/{agent_id:str}/ws",
    dependencies=SOCKET_WRITES,
    opt={ACTION: Action.MESSAGE},
)
async def chat_socket(
    socket: WebSocket[Any, Any, Any], writes: NamedDependency[Writes], agent_id: FromPath[str]
) -> None:
    """Chat with an agent: messages in, turn frames out, cancel at any time."""
    await socket.accept()
    ns = socket.headers.get("x-parley-namespace") or socket.query_params.get("namespace")
    ns = ns or "default"  # not the `ns` dependency: a bad one is an error frame, not a 422
    chat = _ChatSocket(writes, socket, ns, agent_id)
    try:
        if not NAMESPACE.match(ns):
            raise ParleyError(ErrorCode.VALIDATION_ERROR, f"invalid namespace {ns[:80]!r}")
        require_agent(writes.edge.agents, ns, agent_id)
    except ParleyError as exc:
        await chat.error(exc)
        await socket.close(WS_1008_POLICY_VIOLATION, exc.code.value)
        return
    await chat.run()


chat_ws_routes = [chat_socket]


class _ChatSocket:
    """One socket: its conversation, its running turns, one sender at a time."""

    def __init__(
        self, writes: Writes, socket: WebSocket[Any, Any, Any], ns: str, agent_id: str
    ) -> None:
        self.writes, self.edge = writes, writes.edge
        self.socket, self.ns, self.agent_id = socket, ns, agent_id
        self.conversation: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()  # a second message waits for the first's session

    async def run(self) -> None:
        """Serve the socket until the client leaves."""
        try:
            while True:
                message = await self.socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await self._handle(frame_bytes(message))
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, raw: bytes) -> None:
        if len(raw) > MAX_CHAT_FRAME_BYTES:
            await self._refuse(f"frame over {MAX_CHAT_FRAME_BYTES} bytes")
            return
        try:
            value = decode_json(raw)
            frame = msgspec.convert(value, ClientFrame)
        except BodyError as exc:
            await self._refuse(str(exc))
            return
        except msgspec.ValidationError as exc:
            kind = value.get("type") if isinstance(value, dict) else None
            if kind not in ("message", "cancel", "ping"):
                await self._refuse("send a JSON object with `type` message, cancel or ping")
            else:
                await self._refuse(f"invalid {kind} frame: {exc}", ErrorCode.VALIDATION_ERROR)
            return
        if isinstance(frame, Ping):
            await self._send({"type": "pong", "id": frame.id})
        elif isinstance(frame, SendMessage):
            try:
                await count_model_use(self.socket)
            except ParleyError as exc:
                await self.error(exc)
                return
            self._spawn(self._turn(frame))
        else:
            self._spawn(self._cancel(frame))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _turn(self, frame: SendMessage) -> None:
        try:
            async with self._start_lock:
                session_id = frame.conversation_id or self.conversation
                if session_id is not None:
                    check_conversation(self.edge.runtime, self.ns, self.agent_id, session_id)
                command = chat_command(
                    self.ns, frame, agent_id=self.agent_id, session_id=self.conversation
                )
                feed, reply = await start_turn(self.writes, command)
                self.conversation = reply.session_id or session_id
        except ParleyError as exc:
            await self.error(exc)
            return
        idle = self.edge.settings.stream_idle_timeout
        async for delta in feed.frames(idle=idle):
            if delta is None:
                continue
            await self._send(
                {
                    "type": delta.type,
                    "seq": delta.seq,
                    "turn_id": delta.turn_id,
                    "data": client_frame(delta, self.conversation),
                }
            )

    async def _cancel(self, frame: Cancel) -> None:
        session_id = frame.conversation_id or self.conversation
        if session_id is None and frame.turn_id is None:
            await self._refuse("nothing to cancel: no conversation yet", ErrorCode.NO_ACTIVE_TURN)
            return
        command = CancelTurn(
            namespace=self.ns, agent_id=self.agent_id, session_id=session_id, turn_id=frame.turn_id
        )
        try:
            await self.writes.runtime("cancel_turn", command, strict=False)
        except ParleyError as exc:
            await self.error(exc)

    async def error(self, exc: ParleyError) -> None:
        """Send an API error as an ``error`` frame."""
        data = {
            "code": exc.code.value,
            "message": exc.message,
            "details": error_details(exc.details),
        }
        await self._send({"type": "error", "data": data})

    async def _refuse(self, message: str, code: ErrorCode = ErrorCode.INVALID_REQUEST) -> None:
        await self.error(ParleyError(code, message))

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            with contextlib.suppress(Exception):  # the client left: its turns end quietly
                await self.socket.send_text(_encode(payload).decode())
