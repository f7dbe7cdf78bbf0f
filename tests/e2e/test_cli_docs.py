"""The walkthrough of docs/cli.md runs as written: its `sh` block, in bash with `-e` and
`pipefail`, against the real stack, in a namespace of its own, with `parley` on PATH."""

import os
import re
import subprocess
from pathlib import Path

from cli_runner import PARLEY
from cli_runner import cli_for

from parley.devstack.stack import Stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def walkthrough() -> str:
    """The first `sh` block under `## Walkthrough`."""
    section = DOC.read_text().split("## Walkthrough", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "docs/cli.md has no walkthrough block"
    return block.group(1)


def test_the_cli_walkthrough_runs_as_written(stack: Stack, namespace: str, tmp_path: Path):
    env = {
        **cli_for(stack, namespace, tmp_path).env,
        "PATH": f"{PARLEY.parent}:{os.environ['PATH']}",
    }
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout
    assert "⚙ calculator" in out and "results: calculator: 42" in out
    assert "cluster/crew created" in out
    assert "awarded" in out and "completed by" in out
    assert "completed: stage -, new 100%" in out
    assert "agent.created" in out
