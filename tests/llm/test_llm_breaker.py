"""The circuit breaker and the error mapping, without a network."""

import pytest

from parley.llm import CircuitBreaker
from parley.llm import ProviderAuthError
from parley.llm import ProviderBadRequest
from parley.llm import ProviderRateLimited
from parley.llm import ProviderTimeout
from parley.llm import ProviderUnavailable
from parley.llm._base import parse_retry_after
from parley.llm._mapping import error_for_status


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trial_running() -> tuple[Clock, CircuitBreaker]:
    """A breaker (threshold 1, cooldown 5 s) that failed once and, the cooldown over, has
    let its one trial call through."""
    clock = Clock()
    breaker = CircuitBreaker("p", threshold=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now = 5
    breaker.before_call()
    return clock, breaker


def test_the_breaker_opens_at_the_threshold_and_half_opens_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker("p", threshold=2, cooldown=10, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        breaker.before_call()
    clock.now = 10
    assert breaker.state == "half_open"
    breaker.before_call()  # the one trial call
    with pytest.raises(ProviderUnavailable):
        breaker.before_call()  # others still fail fast while it runs
    breaker.record_success()
    assert breaker.state == "closed"


def test_a_failed_trial_call_reopens_the_breaker_for_another_cooldown():
    clock, breaker = trial_running()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now = 9
    assert breaker.state == "open"
    clock.now = 10
    assert breaker.state == "half_open"


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (429, "rate_limit_error", ProviderRateLimited),
        (401, "authentication_error", ProviderAuthError),
        (403, None, ProviderAuthError),
        (400, "invalid_request_error", ProviderBadRequest),
        (422, None, ProviderBadRequest),
        (500, "api_error", ProviderUnavailable),
        (529, "overloaded_error", ProviderUnavailable),
        (504, None, ProviderTimeout),
        (200, "overloaded_error", ProviderUnavailable),
    ],
    ids=lambda v: str(v),
)
def test_statuses_and_error_types_map_to_typed_errors(status, error_type, expected):
    error = error_for_status("p", status, error_type, "why", {})
    assert type(error) is expected
    assert "why" in error.message and error.provider == "p"


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "150"}) == 0.15
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None


def test_a_cancelled_trial_call_lets_another_trial_through():
    _, breaker = trial_running()
    breaker.release()
    breaker.before_call()
    assert breaker.state == "half_open"
