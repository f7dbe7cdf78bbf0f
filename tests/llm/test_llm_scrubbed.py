"""ScrubbedProvider: what a provider sends back passes the scrubber, errors included."""

import traceback
from collections.abc import AsyncIterator

import pytest
from llm_support import SECRET_KEY
from wire_server import WireServer

from parley.identity.scrub import Scrubber
from parley.llm import ChatRequest
from parley.llm import Delta
from parley.llm import Finished
from parley.llm import Message
from parley.llm import ProviderAuthError
from parley.llm import ProviderError
from parley.llm import ScrubbedProvider
from parley.llm import StreamInterrupted
from parley.llm import TextDelta
from parley.llm import ToolCall
from parley.llm import ToolCallDone
from parley.llm import Usage
from parley.llm._base import GuardedProvider

REQUEST = ChatRequest(model="m", messages=(Message("user", "hi"),))
PLAIN = "plainSECRETvalue0987654321zyx"  # no credential shape: known only
scrubber = Scrubber([SECRET_KEY, PLAIN])


class Scripted:
    """A provider that yields ``deltas``, then raises ``error`` (if any)."""

    name = "scripted"

    def __init__(self, deltas: list[Delta], error: ProviderError | None = None) -> None:
        self.deltas, self.error = deltas, error
        self.closed = False

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        for delta in self.deltas:
            yield delta
        if self.error is not None:
            try:
                raise RuntimeError(f"SDK body: {{'key': '{PLAIN}'}}")
            except RuntimeError as sdk:
                raise self.error from sdk

    async def complete(self, request: ChatRequest) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


async def test_text_tool_calls_and_the_completion_are_scrubbed() -> None:
    inner = Scripted(
        [
            TextDelta(f"the key is {PLAIN}"),
            ToolCallDone(ToolCall("c1", "http_request", {"headers": {"x": [PLAIN]}, "n": 1})),
            Finished("end", Usage(1, 1)),
        ]
    )
    provider = ScrubbedProvider(inner, scrubber.scrub)
    assert provider.name == "scripted"
    completion = await provider.complete(REQUEST)
    assert completion.text == "the key is [REDACTED]"
    assert completion.tool_calls[0].arguments == {"headers": {"x": ["[REDACTED]"]}, "n": 1}
    await provider.aclose()
    assert inner.closed


async def test_an_error_is_raised_scrubbed_and_without_the_sdk_exception_behind_it() -> None:
    error = ProviderAuthError("scripted", f"HTTP 401: bad key {PLAIN}", status=401)
    provider = ScrubbedProvider(Scripted([], error), scrubber.scrub)
    with pytest.raises(ProviderAuthError) as raised:
        await provider.complete(REQUEST)
    assert raised.value.message == "HTTP 401: bad key [REDACTED]" and raised.value.status == 401
    shown = "".join(traceback.format_exception(raised.value)) + repr(raised.value)
    assert PLAIN not in shown and "SDK body" not in shown


async def test_an_interrupted_stream_has_its_partial_text_and_cause_scrubbed() -> None:
    cause = ProviderError("scripted", f"echo {SECRET_KEY}")
    error = StreamInterrupted(
        "scripted", f"broke: {SECRET_KEY}", partial_text=f"so far {PLAIN}", cause=cause
    )
    provider = ScrubbedProvider(Scripted([TextDelta("so far")], error), scrubber.scrub)
    with pytest.raises(StreamInterrupted) as raised:
        await provider.complete(REQUEST)
    assert raised.value.partial_text == "so far [REDACTED]"
    assert SECRET_KEY not in str(raised.value) and cause.message == "echo [REDACTED]"


async def test_a_real_adapter_whose_gateway_echoes_the_key_raises_it_scrubbed(
    wire: WireServer, provider: GuardedProvider
) -> None:
    api = provider.name
    wire.script(api, "401_echo")
    scrubbed = ScrubbedProvider(provider, scrubber.scrub)
    with pytest.raises(ProviderAuthError) as raised:
        await scrubbed.complete(REQUEST)
    assert "invalid credentials [REDACTED]" in raised.value.message
    shown = "".join(traceback.format_exception(raised.value))
    assert SECRET_KEY not in shown


async def pieces(provider: ScrubbedProvider) -> list[str]:
    """The text deltas ``provider`` streams, one string each."""
    return [d.text async for d in provider.stream(REQUEST) if isinstance(d, TextDelta)]


def cut_in_two(secret: str, cut: int, after: str) -> list[Delta]:
    """A stream saying ``secret`` in two deltas cut at ``cut``, then ``after``."""
    return [
        TextDelta("the key is "),
        TextDelta(secret[:cut]),
        TextDelta(secret[cut:]),
        TextDelta(after),
        Finished("end", Usage(1, 1)),
    ]


@pytest.mark.parametrize("secret", [PLAIN, SECRET_KEY, "sk-unknownKEY-abcdefghijklmnop123"])
async def test_a_secret_split_across_text_deltas_is_scrubbed_wherever_it_is_cut(
    secret: str,
) -> None:
    for cut in range(1, len(secret)):
        deltas = cut_in_two(secret, cut, " ok")
        provider = ScrubbedProvider(Scripted(deltas), scrubber.scrub, [SECRET_KEY, PLAIN])
        streamed = await pieces(provider)
        assert "".join(streamed) == "the key is [REDACTED] ok", (cut, streamed)


async def test_a_secret_is_never_cut_by_text_held_for_another_one() -> None:
    """Another known secret may begin with the first one's last characters (the dev stack's
    random NATS password once began with its `x`): the tail held for it must not take them
    from the first, whose rest would go out unscrubbed."""
    for other in (PLAIN[-1:] + "0123456789", PLAIN[-3:] + "0123456789"):
        secrets = Scrubber([PLAIN, other])
        for cut in range(1, len(PLAIN)):
            deltas = cut_in_two(PLAIN, cut, ", keep it safe.")
            provider = ScrubbedProvider(Scripted(deltas), secrets.scrub, [PLAIN, other])
            streamed = await pieces(provider)
            assert "".join(streamed) == "the key is [REDACTED], keep it safe.", (cut, streamed)


async def test_ordinary_text_passes_at_once_delta_by_delta() -> None:
    deltas: list[Delta] = [TextDelta(t) for t in ("Hello", " there,", " world")]
    provider = ScrubbedProvider(
        Scripted([*deltas, Finished("end", Usage(1, 1))]), scrubber.scrub, [SECRET_KEY, PLAIN]
    )
    assert await pieces(provider) == ["Hello", " there,", " world"]


async def test_held_text_is_released_before_an_error_so_the_partial_answer_is_whole() -> None:
    error = StreamInterrupted("scripted", "broke", partial_text="Hello sk-")
    provider = ScrubbedProvider(
        Scripted([TextDelta("Hello "), TextDelta("sk-")], error), scrubber.scrub
    )
    streamed: list[str] = []
    with pytest.raises(StreamInterrupted):
        async for delta in provider.stream(REQUEST):
            assert isinstance(delta, TextDelta)
            streamed.append(delta.text)
    assert streamed == ["Hello ", "sk-"]
