"""``python -m parley.devstack up``: run the whole stack until Ctrl-C."""

import argparse
import signal
import sys
import time
from pathlib import Path

from parley.devstack.stack import SERVICES, Stack, StackError


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
    print(
        f"parley: up — edge {stack.edge_url} (docs {stack.edge_url}/schema), "
        f"nats {stack.nats_url}, services {', '.join(SERVICES)}, state {args.state_dir}/. "
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
