"""The operator's models catalogue file (``PARLEY_MODELS_FILE``) and the client principal a
non-agent message sender becomes."""

import json
from pathlib import Path

import msgspec
import pytest

from parley.contracts.models import load_catalogue
from parley.contracts.models_file import CatalogueError
from parley.contracts.models_file import extended
from parley.edge.controllers.message_parties import client_principal
from parley.edge.http.auth import LOCAL_ADMIN
from parley.identity.principal import Principal

SHIPPED = load_catalogue()


def _entry(model: str, price: float) -> dict[str, object]:
    ours = msgspec.to_builtins(SHIPPED.find("anthropic", "claude-sonnet-4-5"))
    return {**ours, "model": model, "price": {"input_per_mtok": price, "output_per_mtok": price}}


def _with(tmp_path: Path, name: str, text: str) -> dict[str, str]:
    (tmp_path / name).write_text(text)
    return {"PARLEY_MODELS_FILE": str(tmp_path / name)}


def test_unset_is_the_shipped_catalogue() -> None:
    assert extended(SHIPPED, {}) is SHIPPED


def test_an_entry_we_list_is_replaced_and_another_added_in_every_format(tmp_path: Path) -> None:
    entries = [_entry("claude-sonnet-4-5", 1.5), _entry("claude-next", 4.0)]
    for name, text in (
        ("m.json", json.dumps({"models": entries})),
        ("m.yaml", json.dumps({"models": entries})),  # JSON is YAML
    ):
        catalogue = extended(SHIPPED, _with(tmp_path, name, text))
        assert len(catalogue.models) == len(SHIPPED.models) + 1
        assert catalogue.price("anthropic", "claude-sonnet-4-5").input_per_mtok == 1.5
        assert catalogue.price("anthropic", "claude-next").output_per_mtok == 4.0


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("m.json", '{"models": [{"model": "x"}]}', "not a models catalogue"),
        ("m.toml", "models = 3", "not a models catalogue"),
        ("m.txt", "{}", "unknown format .txt"),
        ("m.json", json.dumps({"models": [_entry("a", 1), _entry("a", 2)]}), "listed twice"),
        (
            "m.json",
            json.dumps({"models": [{**_entry("a", 1), "provider": "acme"}]}),
            "no adapter for provider acme",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_it(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    env = _with(tmp_path, name, text)
    with pytest.raises(CatalogueError, match=problem) as raised:
        extended(SHIPPED, env)
    assert env["PARLEY_MODELS_FILE"] in str(raised.value)


def test_a_client_sender_is_the_callers_principal_once_identity_exists() -> None:
    key = Principal(id="key:01abc", kind="key", roles=frozenset(), namespaces=frozenset())
    jwt = Principal(
        id="jwt:https://id.example/#u 1", kind="jwt", roles=frozenset(), namespaces=frozenset()
    )
    assert client_principal("client_001", key) == "user:key.01abc"
    assert client_principal("client_001", jwt) == "user:jwt.https.id.example.u.1"
    assert client_principal("client_001", LOCAL_ADMIN) == "user:client_001"  # auth off
    assert client_principal("client_001", None) == "user:client_001"
