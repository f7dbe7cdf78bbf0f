"""nats-py's protocol parser with its two busiest commands read by position.

Nearly every byte a Parley process reads from NATS is a ``MSG`` or ``HMSG`` (deliveries,
replies, events). nats-py matches each control line against a chain of regular expressions,
copies every piece out of a ``bytearray`` and removes it from the buffer's front; on a
rebuild that parsing was half of the feed's time. :class:`FastParser` splits those two lines,
slices the read's ``bytes`` directly, keeps only an unfinished tail between reads, and hands
deliveries of tapped subscriptions (the event feeds, see
:class:`~parley.eventstore._jsfeed.TapRouter`) straight to their handler, with no coroutine
per message. The answer to a request is handed to the waiting request at once, as nats-py's
reply subscription would from its queue one task switch later. Every other command
(``PING``, ``PONG``, ``INFO``, ``+OK``, ``-ERR``) goes through nats-py's own parser,
unchanged.

Hand-written because nats-py has no faster parser to choose; it leaves nats-py's parser
state (``buf``, ``state``, ``needed``, ``header_needed``, ``msg_arg``) as the original
would at the end of every call, so the two can take over from each other between reads.
"""

from collections.abc import Callable
from typing import Any

from nats.errors import ProtocolError
from nats.protocol.parser import AWAITING_CONTROL_LINE
from nats.protocol.parser import AWAITING_MSG_PAYLOAD
from nats.protocol.parser import Parser

__all__ = ["FastParser", "Tap", "fast_parser"]

Tap = Callable[[bytes, bytes, bytes | None], None]
"""A tapped subscription's handler: (reply subject, payload, raw headers or None)."""

_CRLF = b"\r\n"


class FastParser(Parser):
    """nats-py's :class:`Parser`, with ``MSG``/``HMSG`` parsed by position (see module)."""

    def __init__(self, nc: Any = None) -> None:
        self.taps: dict[int, Tap] = {}
        """Subscription id → handler called for each delivery, synchronously."""
        self._resets = 0
        self._replies = -1
        super().__init__(nc)

    def reset(self) -> None:
        """Forget everything buffered (the connection is being replaced)."""
        self._resets += 1
        super().reset()

    async def parse(self, data: bytes = b"") -> None:
        """Parse ``data`` after what is buffered; dispatch every whole message."""
        if self.buf:
            self.buf.extend(data)
            data = bytes(self.buf)
        resets, taps, nc = self._resets, self.taps, self.nc
        size, at = len(data), 0
        state, needed, header = self.state, self.needed, self.header_needed
        arg = self.msg_arg
        sid, subject, reply = arg.get("sid", 0), arg.get("subject", b""), arg.get("reply", b"")
        handed = False  # to nats-py's parser, which leaves the state itself
        try:
            while at < size:
                if state == AWAITING_MSG_PAYLOAD:
                    if size - at < needed + 2:
                        break
                    if header:
                        headers: bytes | None = data[at : at + header]
                        payload = data[at + header : at + needed]
                    else:
                        headers, payload = None, data[at : at + needed]
                    at += needed + 2
                    state, header = AWAITING_CONTROL_LINE, 0
                    tap = taps.get(sid)
                    if tap is not None:
                        tap(reply, payload, headers)
                        continue
                    if sid == self._replies_sid(nc):
                        await self._answer(sid, subject, reply, payload, headers)
                    else:
                        await nc._process_msg(sid, subject, reply, payload, headers)
                    if self._resets != resets:
                        handed = True  # the connection was reset meanwhile: drop the rest
                        return
                    continue
                end = data.find(_CRLF, at)
                if end < 0:
                    break
                op = data[at : at + 4]
                if op == b"MSG ":
                    args, fixed = data[at + 4 : end].split(), 3
                elif op == b"HMSG":
                    args, fixed = data[at + 5 : end].split(), 4
                else:  # any other command: nats-py's parser, from here on
                    self._keep(data, at, state, needed, header)
                    handed = True
                    await super().parse()
                    return
                if len(args) == fixed:
                    args.insert(2, b"")  # no reply subject
                elif len(args) != fixed + 1:
                    raise ProtocolError("nats: malformed MSG")
                try:
                    subject, sid, reply = args[0], int(args[1]), args[2]
                    needed, header = int(args[-1]), int(args[3]) if fixed == 4 else 0
                except ValueError:
                    raise ProtocolError("nats: malformed MSG") from None
                arg["subject"], arg["sid"], arg["reply"] = subject, sid, reply
                at, state = end + 2, AWAITING_MSG_PAYLOAD
        finally:
            if not handed:
                self._keep(data, at, state, needed, header)

    def _replies_sid(self, nc: Any) -> int:
        """The id of the client's subscription to request replies (-1: none yet)."""
        prefix = getattr(nc, "_resp_sub_prefix", None)
        if prefix is None:
            return -1
        sid = self._replies
        if sid not in nc._subs:
            subject = (bytes(prefix) + b"*").decode()
            found = [k for k, sub in nc._subs.items() if sub.subject == subject]
            sid = self._replies = found[0] if found else -1
        return sid

    async def _answer(
        self, sid: int, subject: bytes, reply: bytes, payload: bytes, headers: bytes | None
    ) -> None:
        """Hand a request its reply at once, as nats-py's reply subscription would one task
        switch later (its callback, from the subscription's queue)."""
        nc = self.nc
        nc.stats["in_msgs"] += 1
        nc.stats["in_bytes"] += len(payload)
        msg = nc._build_message(sid, subject, reply, payload, await nc._process_headers(headers))
        token = msg.subject[len(nc._inbox_prefix) + 22 + 2 :]
        future = nc._resp_map.get(token)
        if future is not None and not future.done():
            future.set_result(msg)

    def _keep(self, data: bytes, at: int, state: int, needed: int, header: int) -> None:
        """Leave the parser as nats-py's would: the unparsed tail buffered, the state."""
        self.buf = bytearray(data[at:])
        self.state, self.needed, self.header_needed = state, needed, header


def fast_parser(nc: Any) -> FastParser:
    """The connection's parser, made a :class:`FastParser` if it is not one yet.

    Call it between two reads of the connection (from a task, not a message handler): the
    parser then stands at a command boundary, and its state carries over whole.
    """
    parser = nc._ps
    if isinstance(parser, FastParser):
        return parser
    fast = FastParser(nc)
    fast.buf, fast.state, fast.needed = parser.buf, parser.state, parser.needed
    fast.header_needed, fast.msg_arg = parser.header_needed, parser.msg_arg
    nc._ps = fast
    return fast
