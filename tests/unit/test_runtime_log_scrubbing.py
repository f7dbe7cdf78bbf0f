"""The runtime's log lines carry no secret of its environment, shaped like a key or not."""

import json
import logging
from collections.abc import Iterator

import pytest

from parley.runtime.app import create_app
from parley.runtime.settings import load_settings

PLAIN = "plainSECRETvalue0987654321zyx"


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_a_log_line_quoting_a_known_secret_is_scrubbed(
    root_handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLAIN)
    create_app(load_settings())
    log = logging.getLogger("parley.runtime.test")
    log.warning("provider said: bad key %s", PLAIN)
    try:
        raise RuntimeError(f"body {{'key': '{PLAIN}'}}")
    except RuntimeError:
        log.exception("call failed")
    everything = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert all(PLAIN not in json.dumps(line) for line in everything)
    # other libraries may log too (OpenTelemetry, when a tracer provider was set before)
    lines = [line for line in everything if line["logger"] == log.name]
    assert [line["message"] for line in lines] == [
        "provider said: bad key [REDACTED]",
        "call failed",
    ]
    assert "[REDACTED]" in lines[1]["exception"]
