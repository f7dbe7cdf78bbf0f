"""``python -m parley.devstack up``: run the whole stack until Ctrl-C."""

import argparse
import signal
import sys
import time
from pathlib import Path

from parley.devstack.stack import SERVICES, Stack, StackError


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
    parser.add_argument("--port", type=int, default=8080, help="edge HTTP port")
    parser.add_argument("--nats-port", type=int, default=4222)
    args = parser.parse_args()

    stack = Stack(args.state_dir, edge_port=args.port, nats_port=args.nats_port, log_to_files=False)
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
        f"parley: up — edge {stack.edge_url} (docs {stack.edge_url}/schema), "
        f"nats {stack.nats.address}, services {', '.join(SERVICES)}, state {args.state_dir}/. "
        "Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    code = 0
    while not stopping:
        if dead := stack.dead():
            print(f"parley: {', '.join(dead)} exited; stopping", file=sys.stderr)
            code = 1
            break
        time.sleep(0.2)
    stack.stop()
    print("parley: stopped", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
