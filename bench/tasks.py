"""Contract Net rounds: distribute → award with 5, 50 and 200 bidders.

The bidders are real agents answering through the runtime by their deterministic bidding
policy (no model call). A round is timed from the `distribute_task` command (with `wait`,
sent straight to the tasks service over NATS) to its reply, which comes once the award is
in the store: cfp through the messaging service to every bidder's inbox, each runtime's
`propose` back through messaging to the tasks inbox, the decision and its append.
"""

import time
import uuid

import httpx
import msgspec
import nats

from bench._stats import report
from parley.contracts import subjects
from parley.contracts.tasks import CreateTask
from parley.contracts.tasks import DistributeTask
from parley.contracts.tasks import TaskReply
from parley.contracts.tasks import TaskSpec

__all__ = ["rounds"]

_decode = msgspec.json.Decoder(TaskReply).decode


async def _agents(edge_url: str, count: int) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=edge_url, timeout=30) as http:
        for i in range(count):
            body = {
                "name": f"bidder-{uuid.uuid4().hex[:6]}-{i}",
                "bidding": {"base_cost": 1 + i % 7, "default_time_s": 1 + i % 5},
            }
            created = (await http.post("/api/v1/agents", json=body)).json()["data"]
            await http.post(f"/api/v1/agents/{created['id']}/start")
            ids.append(created["id"])
        last = (await http.get("/api/v1/agents", params={"limit": 1})).status_code
        assert last == 200
    return ids


async def rounds(
    edge_url: str,
    nats_url: str,
    sizes: tuple[int, ...] = (5, 50, 200),
    repeat: int = 20,
    max_wait: float = 5.0,
) -> None:
    """Time ``repeat`` rounds (after two warm-ups) for each number of bidders.

    A round whose bids do not all arrive within ``max_wait`` ends at that deadline; the
    figure line then says how many bids made it in time.
    """
    agents = await _agents(edge_url, max(sizes))
    nc = await nats.connect(nats_url)
    try:
        for size in sizes:
            bidders = agents[:size]
            latencies: list[float] = []
            bids: list[int] = []
            started = time.perf_counter()
            for n in range(repeat + 2):
                spec = TaskSpec(name=f"bench-{n}", description="x", participants=bidders)
                created = await nc.request(
                    subjects.cmd("tasks", "create_task"),
                    msgspec.json.encode(CreateTask(spec=spec)),
                    timeout=10,
                )
                task_id = _decode(created.data).task_id
                command = DistributeTask(
                    task_id=task_id or "", max_wait_seconds=max_wait, wait=True
                )
                start = time.perf_counter()
                msg = await nc.request(
                    subjects.cmd("tasks", "distribute_task"),
                    msgspec.json.encode(command),
                    timeout=max_wait + 10,
                )
                elapsed = time.perf_counter() - start
                reply = _decode(msg.data)
                if not reply.ok or reply.status not in ("awarded", "completed"):
                    raise RuntimeError(f"round with {size} bidders ended {reply}")
                if n >= 2:
                    latencies.append(elapsed)
                    bids.append(reply.proposals_received or 0)
            report(
                f"contract-net round, {size} bidders (distribute → award)",
                repeat,
                time.perf_counter() - started,
                latencies,
            )
            if min(bids) < size:
                print(
                    f"  only {min(bids)}–{max(bids)} of {size} bids arrived by the {max_wait:g} s"
                    " deadline in some rounds: those rounds ended at the deadline",
                    flush=True,
                )
    finally:
        await nc.close()
