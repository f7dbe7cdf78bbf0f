"""One stack layout against another, on the same figures.

- ``--cluster``: the edge's command figures and the ACL request→inform round trips on one
  nats-server (R1, the server's lazy fsync, one process of each service) against
  ``just up --cluster`` (three NATS nodes, every stream at R3 with ``sync_interval: always``,
  two processes of each service and two edges; the load goes to the first edge and node).
- ``--combined``: the same figures, chat turns and webhook executions (offline provider) with
  each service in its own process against ``just up --combined`` (every service and the
  edge in one process, :mod:`parley.combined`).

Each layout prints its figures as it runs, and the resident memory of its Parley processes;
then one table puts them side by side.
"""

import contextlib
import io
import re
import sys
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import acl
from bench import edge
from bench import runtime
from bench._stack import running
from parley.devstack.stack import Stack

__all__ = ["compare"]

_LINE = re.compile(r"^(?P<name>.+?)\s+(?P<rate>[\d,]+)/s (?:.*?p50 (?P<p50>[\d.]+) ms)?")
_MEMORY = "resident memory of the Parley processes"
_LAYOUTS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "cluster": (("one node", {}), ("3 nodes R3 sync", {"cluster_mode": True})),
    "combined": (("one process each", {}), ("combined", {"combined": True})),
}
"""For each comparison, its two layouts: a label and the :class:`Stack` options."""


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy."""

    def __init__(self) -> None:
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return sys.__stdout__.write(text) if sys.__stdout__ else len(text)

    def flush(self) -> None:
        if sys.__stdout__:
            sys.__stdout__.flush()


def _resident_mib(stack: Stack) -> float:
    """Resident memory of the stack's Parley processes (not NATS), in MiB."""
    total = 0
    for process in stack.processes.values():
        with contextlib.suppress(OSError), open(f"/proc/{process.pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total / 1024


async def _figures(
    tmp: Path,
    env: dict[str, str],
    options: dict[str, Any],
    run: Callable[[Stack], Awaitable[None]],
) -> str:
    """Run the figures on one layout; what they printed."""
    tee = _Tee()
    async with running(tmp, env, **options) as stack:
        with contextlib.redirect_stdout(tee):
            await run(stack)
            print(
                f"{_MEMORY:<58} {_resident_mib(stack):>8,.0f} MiB in {len(stack.processes)} "
                "processes",
                flush=True,
            )
    return tee.copy.getvalue()


def _parse(printed: str) -> dict[str, tuple[str, str]]:
    """Figure name → (rate, p50) from the lines :func:`bench._stats.report` printed, and the
    memory line."""
    found = {}
    for line in printed.splitlines():
        if match := _LINE.match(line):
            p50 = f"{match['p50']} ms" if match["p50"] else ""
            found[match["name"]] = (match["rate"] + "/s", p50)
        elif line.startswith(_MEMORY):
            found[_MEMORY] = (line[len(_MEMORY) :].split("MiB")[0].strip() + " MiB", "")
    return found


async def compare(tmp: Path, env: dict[str, str], scale: int, against: str) -> None:
    """Both layouts of ``against`` (``cluster`` or ``combined``), then a side-by-side table
    (rate and p50 latency)."""
    chats = against == "combined"
    provider = await runtime.LocalProvider().start() if chats else None
    if provider is not None:
        env = {**env, "PARLEY_OPENAI_COMPATIBLE_BASE_URL": provider.url}

    async def run(stack: Stack) -> None:
        await edge.create_agents(stack.edge_url, count=4_000 // scale)
        await acl.round_trips(stack.edge_url, stack.nats_url, count=1_000 // scale)
        if chats:
            await runtime.chat_turns(stack.edge_url, turns=2_000 // scale)
            await runtime.executions(stack.edge_url, count=1_000 // scale)

    layouts = _LAYOUTS[against]
    tables = []
    try:
        for label, options in layouts:
            print(f"== {label} ==", flush=True)
            tables.append(_parse(await _figures(tmp / label.replace(" ", "-"), env, options, run)))
    finally:
        if provider is not None:
            await provider.stop()
    print(f"\n== {against} against {layouts[0][0]} (rate, p50) ==")
    print(f"{'':<58} {layouts[0][0]:>24} {layouts[1][0]:>24}")
    for name, (rate, p50) in tables[0].items():
        other_rate, other_p50 = tables[1].get(name, ("-", "-"))
        print(f"{name:<58} {rate:>11} {p50:>12} {other_rate:>11} {other_p50:>12}", flush=True)
