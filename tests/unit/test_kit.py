"""The service kit: settings from the environment, redacting logs, trace propagation."""

import json
import logging

import msgspec
import nats.errors
import nats.js.errors
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from parley.contracts.errors import ErrorCode
from parley.kit import logs
from parley.kit.errors import error_body_for
from parley.kit.logs import configure_logging
from parley.kit.logs import redact
from parley.kit.logs import scrub_logs
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env
from parley.kit.telemetry import extract
from parley.kit.telemetry import inject


class _Settings(msgspec.Struct, frozen=True):
    port: int = 8080
    name: str = "x"
    ratio: float = 0.5


def test_settings_come_from_parley_variables_converted_to_their_types() -> None:
    settings = from_env(_Settings, {"PARLEY_PORT": "9000", "PARLEY_RATIO": "0.25", "OTHER": "1"})
    assert settings == _Settings(port=9000, name="x", ratio=0.25)


def test_a_setting_of_the_wrong_type_names_the_variable_group() -> None:
    with pytest.raises(SettingsError, match="PARLEY_"):
        from_env(_Settings, {"PARLEY_PORT": "eighty"})


def test_service_settings_default_to_a_local_nats_and_jetstream() -> None:
    settings = from_env(ServiceSettings, {})
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.eventstore == "jetstream"


def test_keys_and_bearer_tokens_are_redacted_from_text() -> None:
    text = "calling with sk-ant-abcdefghijklmnop and Bearer eyJhbGciOi.x.y"
    assert "sk-ant-abcdefghijklmnop" not in redact(text)
    assert "eyJhbGciOi" not in redact(text)


def test_log_lines_are_json_and_never_carry_secret_fields(capsys: pytest.CaptureFixture) -> None:
    configure_logging("unit", "INFO")
    try:
        logging.getLogger("unit").info(
            "provider key is sk-proj-1234567890abcdef", extra={"api_key": "k-1", "agent": "a"}
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        logging.getLogger().handlers.clear()
    entry = json.loads(line)
    assert entry["service"] == "unit" and entry["agent"] == "a"
    assert entry["api_key"] == "[REDACTED]"
    assert "sk-proj-1234567890abcdef" not in line


def test_a_log_scrubber_outlives_logging_configured_again(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_scrubbers", [])
    secret = "plainUNITsecret0987654321"  # no shape redact() knows: only a scrubber finds it
    scrub_logs(lambda line: line.replace(secret, "[REDACTED]"))
    try:
        configure_logging("runtime", "INFO")
        configure_logging("messaging", "INFO")  # the next service in one process (combined)
        logging.getLogger("unit").warning("the provider answered %s", secret)
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        logging.getLogger().handlers.clear()
    assert secret not in line
    assert json.loads(line)["message"] == "the provider answered [REDACTED]"


def test_a_model_call_s_http_request_is_not_logged_but_its_failure_is(
    capsys: pytest.CaptureFixture,
) -> None:
    configure_logging("runtime", "INFO")
    try:
        sdk = logging.getLogger("httpx2")  # the provider SDKs' HTTP client
        sdk.info('HTTP Request: POST https://api.example/v1/messages "HTTP/1.1 200 OK"')
        sdk.warning("connection pool is full")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        logging.getLogger().handlers.clear()
    assert [json.loads(line)["message"] for line in lines] == ["connection pool is full"]


def test_a_span_context_survives_a_round_trip_through_message_headers() -> None:
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("edge") as span:
        headers = inject({"other": "kept"})
    assert headers["other"] == "kept"
    assert headers["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")
    carried = trace.get_current_span(extract(headers)).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id
    assert carried.span_id == span.get_span_context().span_id


def test_a_nats_outage_is_service_unavailable_and_a_bug_stays_an_internal_error() -> None:
    for outage in (
        nats.errors.NoRespondersError(),
        nats.errors.TimeoutError(),
        nats.js.errors.ServiceUnavailableError(),
        TimeoutError(),
    ):
        assert error_body_for(outage).code == ErrorCode.SERVICE_UNAVAILABLE
    assert error_body_for(RuntimeError("a bug")).code == ErrorCode.INTERNAL_ERROR
