"""Scrubbing: known secrets and credential shapes never survive into recorded text."""

from pathlib import Path

from parley.identity.keys import issue_secret
from parley.identity.scrub import REDACTED
from parley.identity.scrub import Scrubber
from parley.identity.scrub import secrets_from_environment

PROVIDER_KEY = "sk-ant-api03-" + "Q" * 40
ODD_SECRET = "my gateway pass/word+1"


def test_a_known_secret_is_redacted_wherever_it_appears_verbatim_or_url_encoded() -> None:
    scrub = Scrubber([ODD_SECRET])
    text = f"proxy said: {ODD_SECRET}! and again ?p=my%20gateway%20pass%2Fword%2B1"
    assert scrub(text) == f"proxy said: {REDACTED}! and again ?p={REDACTED}"


def test_a_provider_echoing_its_authorization_header_is_scrubbed() -> None:
    scrub = Scrubber()
    echoed = (
        '401 Unauthorized: {"error": "invalid key", "headers": {"authorization": "Bearer '
        + PROVIDER_KEY
        + '", "x-api-key": "'
        + PROVIDER_KEY
        + '"}}'
    )
    cleaned = scrub(echoed)
    assert PROVIDER_KEY not in cleaned and "QQQQ" not in cleaned
    assert "Bearer [REDACTED]" in cleaned and "invalid key" in cleaned


def test_credential_shapes_are_redacted_even_when_unknown() -> None:
    scrub = Scrubber()
    parley_key = issue_secret("0123456789abcdef").secret
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlLXBhcnQ"
    cases = {
        "openai sk-proj-" + "a1" * 12: "openai " + REDACTED,
        "key " + parley_key + " end": "key " + REDACTED + " end",
        "ticket pt_" + "Z" * 43: "ticket " + REDACTED,
        "token " + jwt: "token " + REDACTED,
        "Authorization: Basic dXNlcjpwYXNz": "Authorization: Basic " + REDACTED,
        "X-Api-Key: abcdef123456": "X-Api-Key: " + REDACTED,
        "password=hunter22x&user=ann": "password=" + REDACTED + "&user=ann",
        "github ghp_" + "a" * 36: "github " + REDACTED,
    }
    for text, expected in cases.items():
        assert scrub(text) == expected, text


def test_ordinary_text_is_left_alone() -> None:
    scrub = Scrubber(["short", "a-long-known-secret"])  # "short" is too short to scrub
    text = "The task is short: ask-the-user, the skeleton key, a sk-8 ski. Bearer of news."
    assert scrub(text) == text


def test_nested_data_is_scrubbed_into_a_new_structure() -> None:
    scrub = Scrubber([ODD_SECRET])
    data = {
        "error": {"message": f"bad {ODD_SECRET}", "codes": [1, 2.5, None, True]},
        "request": {"headers": {"Authorization": "anything at all", "Accept": "json"}},
        "tuple": ("x", PROVIDER_KEY),
    }
    cleaned = scrub.scrub_data(data)
    assert cleaned == {
        "error": {"message": f"bad {REDACTED}", "codes": [1, 2.5, None, True]},
        "request": {"headers": {"Authorization": REDACTED, "Accept": "json"}},
        "tuple": ("x", REDACTED),
    }
    assert data["error"]["message"] == f"bad {ODD_SECRET}"  # type: ignore[index]


def test_secrets_are_gathered_from_the_environment_and_secret_files(tmp_path: Path) -> None:
    jwt_secret = tmp_path / "jwt.secret"
    jwt_secret.write_text("the-jwt-hmac-secret-of-40-characters-xx\n")
    extra = tmp_path / "extra"
    extra.write_text("an-explicitly-named-secret")
    environ = {
        "ANTHROPIC_API_KEY": PROVIDER_KEY,
        "OPENAI_API_KEY": "sk-short",  # 8 characters: kept
        "GATEWAY_TOKEN": ODD_SECRET,
        "PARLEY_JWT_SECRET_FILE": str(jwt_secret),
        "PARLEY_JWT_JWKS_FILE": str(extra),  # public keys: not a secret
        "PARLEY_NATS_URL": "nats://127.0.0.1:4222",
        "PARLEY_MAX_TOKENS": "4096",
        "HOME": "/root/somewhere-long",
    }
    found = secrets_from_environment(environ, files=[extra, tmp_path / "missing"])
    assert found == {
        PROVIDER_KEY,
        "sk-short",
        ODD_SECRET,
        "the-jwt-hmac-secret-of-40-characters-xx",
        "an-explicitly-named-secret",
    }
    scrub = Scrubber.from_environment(environ)
    assert scrub("jwt secret the-jwt-hmac-secret-of-40-characters-xx") == f"jwt secret {REDACTED}"


def test_secrets_added_later_are_scrubbed_too() -> None:
    scrub = Scrubber()
    issued = issue_secret("abc")
    scrub.add(issued.secret, "tiny")
    assert issued.secret in scrub and "tiny" not in scrub
    assert scrub(f"echo {issued.secret}") == f"echo {REDACTED}"
