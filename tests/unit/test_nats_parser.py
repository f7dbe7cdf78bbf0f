"""The fast NATS protocol parser reads exactly what nats-py's own parser reads, however the
bytes are split between reads, and hands tapped subscriptions their deliveries directly."""

import asyncio
import random
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import ProtocolError
from nats.protocol.parser import Parser

from parley.eventstore.nats_parser import FastParser
from parley.eventstore.nats_parser import fast_parser

Seen = list[tuple[Any, ...]]


class _Client:
    """What a parser calls on its client, written down."""

    def __init__(self, seen: Seen) -> None:
        self._ps: Parser = Parser(self)
        self.seen = seen

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        self.seen.append(("msg", sid, bytes(subject), bytes(reply), bytes(data), headers))

    async def _process_ping(self) -> None:
        self.seen.append(("ping",))

    async def _process_pong(self) -> None:
        self.seen.append(("pong",))

    async def _process_info(self, info: dict[str, Any]) -> None:
        self.seen.append(("info", info))

    async def _process_err(self, message: str) -> None:
        self.seen.append(("err", message))


def _hmsg(head: bytes, headers: bytes, payload: bytes) -> bytes:
    sizes = b"%d %d" % (len(headers), len(headers) + len(payload))
    return b"HMSG " + head + b" " + sizes + b"\r\n" + headers + payload + b"\r\n"


def _wire() -> bytes:
    """A stretch of server traffic: every kind of message, payloads holding CRLF and `MSG`."""
    return b"".join(
        [
            b'INFO {"server_id":"x","max_payload":1048576}\r\n',
            b"MSG parley.ev.agent.a 7 $JS.ACK.E.c.1.10.1.0.0 5\r\nhello\r\n",
            b"MSG reply.subject 3 0\r\n\r\n",
            b"+OK\r\n",
            _hmsg(b"_INBOX.x.y 12", b"NATS/1.0\r\nA: b\r\n\r\n", b"MSG \r\n"),
            b"PING\r\n",
            b"HMSG t 4 reply.to 16 16\r\nNATS/1.0 100\r\n\r\n\r\n",
            b"MSG  spaced   9  r  4\r\nbody\r\n",
            b"PONG\r\n",
            b"-ERR 'Stale Connection'\r\n",
            b"MSG last 7 11\r\nMSG x 1 2\r\n\r\n",
        ]
    )


async def _read(parser_type: type[Parser], wire: bytes, cuts: list[int], taps: bool) -> Seen:
    seen: Seen = []
    client = _Client(seen)
    parser = parser_type(client)
    if taps and isinstance(parser, FastParser):
        parser.taps[7] = lambda reply, data, headers: seen.append(
            ("msg", 7, b"?", bytes(reply), bytes(data), headers)
        )
    start = 0
    for cut in [*cuts, len(wire)]:
        await parser.parse(wire[start:cut])
        start = cut
    if taps:  # the subject is not given to a tap
        seen[:] = [(*e[:2], b"?", *e[3:]) if e[:2] == ("msg", 7) else e for e in seen]
    return seen


@pytest.mark.parametrize("taps", [False, True])
async def test_it_reads_what_nats_py_reads_at_every_split(taps: bool) -> None:
    wire = _wire()
    expected = await _read(Parser, wire, [], taps)
    assert [e[0] for e in expected].count("msg") == 6
    for cut in range(1, len(wire)):
        assert await _read(FastParser, wire, [cut], taps) == expected, cut
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(wire)), rng.randint(2, 12)))
        assert await _read(FastParser, wire, cuts, taps) == expected, cuts


async def test_a_malformed_message_line_is_a_protocol_error() -> None:
    parser = FastParser(_Client([]))
    with pytest.raises(ProtocolError):
        await parser.parse(b"MSG subject notanumber 5\r\nhello\r\n")


async def test_it_takes_over_from_nats_py_mid_message() -> None:
    seen: Seen = []
    client = _Client(seen)
    await client._ps.parse(b"MSG a 1 r 9\r\nhello")
    fast = fast_parser(client)
    assert client._ps is fast and fast_parser(client) is fast
    await fast.parse(b" you\r\nMSG b 2 0\r\n\r\n")
    assert seen == [("msg", 1, b"a", b"r", b"hello you", None), ("msg", 2, b"b", b"", b"", None)]


async def test_a_reset_during_a_delivery_drops_the_rest_of_the_read() -> None:
    seen: Seen = []
    client = _Client(seen)
    parser = FastParser(client)

    async def resetting(*args: Any) -> None:
        seen.append(args[:2])
        parser.reset()

    client._process_msg = resetting  # type: ignore[method-assign]
    await parser.parse(b"MSG a 1 2\r\nhi\r\nMSG b 2 2\r\nho\r\n")
    assert seen == [(1, b"a")] and parser.buf == bytearray()


async def test_requests_get_their_replies_and_no_responders_through_it(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        parser = fast_parser(nc)

        async def echo(msg: Msg) -> None:
            await nc.publish(msg.reply, b"echo: " + msg.data, headers={"Seen": "yes"})

        await nc.subscribe("parser.echo", cb=echo)
        replies = await asyncio.gather(
            *(nc.request("parser.echo", b"%d" % i, timeout=2) for i in range(50))
        )
        assert [r.data for r in replies] == [b"echo: %d" % i for i in range(50)]
        assert replies[0].headers == {"Seen": "yes"}
        assert parser._replies in nc._subs  # the replies came the short way
        with pytest.raises(NoRespondersError):
            await nc.request("parser.nobody", b"", timeout=2)
    finally:
        await nc.close()
