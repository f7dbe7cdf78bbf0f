"""The cost of cluster mode: the edge's command figures and the ACL request→inform round
trips on one nats-server (R1, the server's lazy fsync, one process of each service) against
``just up --cluster`` (three NATS nodes, every stream at R3 with ``sync_interval: always``, two
processes of each service and two edges; the load goes to the first edge and the first node).

Each layout prints its figures as it runs; then one table puts them side by side.
"""

import asyncio
import contextlib
import io
import re
import sys
from pathlib import Path

from bench import acl
from bench import edge
from parley.devstack.stack import Stack

__all__ = ["compare"]

_LINE = re.compile(r"^(?P<name>.+?)\s+(?P<rate>[\d,]+)/s .*?p50 (?P<p50>[\d.]+) ms")
_LAYOUTS = (("one node", False), ("3 nodes R3 sync", True))


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


async def _figures(tmp: Path, env: dict[str, str], scale: int, cluster: bool) -> str:
    """Run the edge and ACL figures on one layout; what they printed."""
    stack = Stack(tmp, env=env, cluster_mode=cluster)
    await asyncio.to_thread(stack.start)
    tee = _Tee()
    try:
        with contextlib.redirect_stdout(tee):
            await edge.create_agents(stack.edge_url, count=4_000 // scale)
            await acl.round_trips(stack.edge_url, stack.nats_url, count=1_000 // scale)
    finally:
        await asyncio.to_thread(stack.stop)
    return tee.copy.getvalue()


def _parse(printed: str) -> dict[str, tuple[str, str]]:
    """Figure name → (rate, p50) from the lines :func:`bench._stats.report` printed."""
    found = {}
    for line in printed.splitlines():
        if match := _LINE.match(line):
            found[match["name"]] = (match["rate"] + "/s", match["p50"] + " ms")
    return found


async def compare(tmp: Path, env: dict[str, str], scale: int) -> None:
    """Both layouts' figures, then a side-by-side table (rate and p50 latency)."""
    tables = []
    for label, cluster in _LAYOUTS:
        print(f"== edge commands and ACL round trips: {label} ==", flush=True)
        tables.append(_parse(await _figures(tmp / label.replace(" ", "-"), env, scale, cluster)))
    print("\n== cluster cost (rate, p50) ==")
    print(f"{'':<58} {_LAYOUTS[0][0]:>24} {_LAYOUTS[1][0]:>24}")
    for name, (rate, p50) in tables[0].items():
        other_rate, other_p50 = tables[1].get(name, ("-", "-"))
        print(f"{name:<58} {rate:>11} {p50:>12} {other_rate:>11} {other_p50:>12}", flush=True)
