"""The pages of docs/coming-from/ and docs/a2a.md run as written, against a stack of this
module's own (authentication on, as in production).

Each page's ``sh`` blocks run in order in one ``bash -euo pipefail``, then its ``python``
blocks in order in one interpreter (this venv's: httpx is there), with ``PARLEY_URL`` and
``PARLEY_API_KEY`` set as the pages ask and ``parley`` on ``PATH``. Every call in them fails
the run on an HTTP error (``curl --fail-with-body``, ``raise_for_status``) and they check what
they claim (``jq -e``, ``assert``); here the run must succeed and print what the page says.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import PARLEY
from tests_support import admin_key

from parley.devstack.stack import Stack

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {
    "goagents": DOCS / "coming-from" / "goagents.md",
    "juliaos": DOCS / "coming-from" / "juliaos.md",
    "caxton": DOCS / "coming-from" / "caxton.md",
    "agentc": DOCS / "coming-from" / "agentc.md",
    "godel": DOCS / "coming-from" / "godel.md",
    "a2a": DOCS / "a2a.md",
}
PRINTS = {
    "goagents": ["cluster support: 2 agents", "echo: Hello", "tokens:", "scaled to 3"],
    "juliaos": ["RUNNING -> PAUSED", "results: calculator: 2", "plan_and_execute"],
    "caxton": ["data-analyzer running", "inform", "awarded", "canary"],
    "agentc": ["echo: hello", "changed: ['params']", "notes.txt"],
    "godel": ["paused", "swarm analysis: 3 agents", "custom.event"],
    "a2a": ["skills: summarise, tool:calculator", "echo: hello over A2A"],
}
_BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.S | re.M)


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"PARLEY_AUTH": "on"}


def blocks(page: Path, language: str) -> str:
    """The page's ``language`` blocks, in order, as one script."""
    found = [code for lang, code in _BLOCK.findall(page.read_text()) if lang == language]
    return "\n".join(found)


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    ran = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"{command[0]} failed:\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_page_runs_as_written(own_stack: Stack, name: str, tmp_path: Path) -> None:
    page = PAGES[name]
    base = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env = {
        **base,
        "PARLEY_URL": own_stack.edge_url,
        "PARLEY_API_KEY": admin_key(own_stack),
        "PATH": f"{PARLEY.parent}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    shell, python = blocks(page, "sh"), blocks(page, "python")
    assert shell and python, f"{page.name} needs shell and Python snippets"
    out = _run(["bash", "-euo", "pipefail", "-c", shell], env, tmp_path)
    (tmp_path / "snippets.py").write_text(python)
    out += _run([sys.executable, "snippets.py"], env, tmp_path)
    for line in PRINTS[name]:
        assert line in out, f"{page.name} did not print {line!r}:\n{out}"
