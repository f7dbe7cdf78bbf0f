"""``python -m parley.devstack up [--cluster | --combined]``: run the whole stack until Ctrl-C.

A part that exits (a service, the edge, nats-server) is restarted after a backoff (0.5 s,
doubling to 10 s, back to 0.5 s once it ran 30 s); the others keep running. Ctrl-C or SIGTERM
stops everything: the edges, then the services, then NATS, each with SIGTERM and 15 s to
finish before SIGKILL."""

import argparse
import signal
import sys
import time
from pathlib import Path

from parley.devstack.stack import Stack
from parley.devstack.stack import StackError
from parley.devstack.supervise import Supervisor


def admin_key_notice(stack: Stack) -> str:
    """What to tell about the bootstrap admin key: the key itself on the start that made it
    (the only time it is shown), where it is on every later start."""
    where = stack.admin_key_file
    if stack.admin_key is not None:
        return (
            f"parley: bootstrap admin key (shown once; also in {where}, readable by you only):\n"
            f"\n    {stack.admin_key}\n\n"
            "parley: send it as X-API-Key, or make your own keys with POST /api/v1/keys."
        )
    if where.exists():
        return f"parley: the bootstrap admin key is in {where}"
    return f"parley: the bootstrap admin key was made earlier and {where} is gone"


def main() -> int:
    parser = argparse.ArgumentParser(prog="parley-devstack", description=__doc__)
    parser.add_argument("command", choices=["up"], help="up: start everything, Ctrl-C stops")
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument(
        "--port", type=int, default=8080, help="edge HTTP port (the second edge: port + 1)"
    )
    parser.add_argument(
        "--nats-port", type=int, default=4222, help="NATS port (other nodes: port + 1, + 2)"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="three NATS nodes (R3 streams), two processes of every service, two edges",
    )
    parser.add_argument(
        "--combined",
        action="store_true",
        help="every service and the edge in one process (python -m parley.combined)",
    )
    args = parser.parse_args()
    if args.cluster and args.combined:
        parser.error("--cluster and --combined do not go together")

    stack = Stack(
        args.state_dir,
        edge_port=args.port,
        nats_port=args.nats_port,
        log_to_files=False,
        cluster_mode=args.cluster,
        combined=args.combined,
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except StackError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    print(admin_key_notice(stack), file=sys.stderr, flush=True)
    print(
        f"parley: up — edge {' '.join(stack.edge_urls)} (docs {stack.edge_url}/schema), "
        f"nats {stack.nats_address}, processes {', '.join(stack.processes)}, "
        f"state {args.state_dir}/. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    supervisor = Supervisor(stack, say=lambda line: print(line, file=sys.stderr, flush=True))
    while not stopping:
        supervisor.tick()
        time.sleep(0.2)
    print("parley: stopping", file=sys.stderr, flush=True)
    stack.stop()
    print("parley: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
