"""The model SDKs load when first needed: a process that imports the runtime (or the llm
package) has neither the Anthropic nor the OpenAI SDK in memory until an adapter of theirs is
built or preloaded — they are most of a runtime's start-up CPU. Checked in a fresh
interpreter: this test process has long imported them."""

import json
import subprocess
import sys

import pytest

from parley.llm.settings import ProviderSettings
from parley.llm.settings import configured

_PROBE = """
import json, sys
import parley.runtime.app
from parley.llm import provider_for
from parley.llm.factory import preload
from parley.llm.settings import ProviderSettings
def loaded():
    return sorted(m for m in ("anthropic", "openai") if m in sys.modules)
seen = {"imported": loaded()}
provider_for("offline")
seen["offline"] = loaded()
provider_for("openai_compatible", ProviderSettings(base_url="http://127.0.0.1:9/v1"))
seen["openai_compatible"] = loaded()
preload(["anthropic"])
seen["preloaded"] = loaded()
print(json.dumps(seen))
"""


def test_the_sdks_load_on_first_use_or_preload_only() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen == {
        "imported": [],
        "offline": [],
        "openai_compatible": ["openai"],
        "preloaded": ["anthropic", "openai"],
    }


def test_a_provider_is_configured_by_an_endpoint_or_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("ANTHROPIC_API_KEY", "PARLEY_ANTHROPIC_API_KEY_FILE"):
        monkeypatch.delenv(variable, raising=False)
    assert not configured("anthropic", ProviderSettings())
    assert configured("anthropic", ProviderSettings(base_url="http://127.0.0.1:9"))
    assert configured("anthropic", ProviderSettings(api_key="k"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert configured("anthropic", ProviderSettings())
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("PARLEY_ANTHROPIC_API_KEY_FILE", "/run/secrets/anthropic")
    assert configured("anthropic", ProviderSettings())
    assert not configured("offline", ProviderSettings())
