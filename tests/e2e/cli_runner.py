"""The real `parley` console script as the tests run it: a subprocess with its own config
dir, pointed at a stack's edge with its admin key (`PARLEY_URL`, `PARLEY_API_KEY`) and a
test's own namespace."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests_support import admin_key

from parley.devstack.stack import Stack

PARLEY = Path(sys.executable).with_name("parley")
"""The console script `uv sync` installed beside this interpreter."""


@dataclass(frozen=True)
class Ran:
    """What one run of `parley` did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The standard output as one JSON document."""
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        """The standard output as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Cli:
    """Runs `parley` with ``env`` on top of a clean environment (no user config)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        self.env = {**base, "COLUMNS": "200", "NO_COLOR": "1", **env}
        self.cwd = cwd

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 90,
    ) -> Ran:
        """Run ``parley *args``; never raises on a non-zero exit."""
        done = subprocess.run(
            [str(PARLEY), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Ran(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **options: Any) -> Ran:
        """Run ``parley *args``, asserted to exit 0."""
        ran = self.run(*args, **options)
        assert ran.code == 0, (args, ran)
        return ran

    def json(self, *args: str, **options: Any) -> Any:
        """``parley *args -o json``, asserted to exit 0; the parsed output."""
        return self.ok(*args, "-o", "json", **options).json()

    def fails(self, code: int, error: str, *args: str, **options: Any) -> Ran:
        """Run ``parley *args``, asserted to exit ``code`` naming ``error`` on stderr."""
        ran = self.run(*args, **options)
        assert ran.code == code, (args, ran)
        assert f"parley: {error}" in ran.err, ran.err
        return ran


def cli_for(stack: Stack, namespace: str, home: Path) -> Cli:
    """`parley` as ``stack``'s admin, in ``namespace``, with an empty config dir under
    ``home`` (also its working directory)."""
    env = {
        "PARLEY_URL": stack.edge_url,
        "PARLEY_API_KEY": admin_key(stack),
        "PARLEY_NAMESPACE": namespace,
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    return Cli(env, home)
