"""``python -m parley.combined`` builds every service and the edge in one process: its logs
are tagged ``combined`` and the spans outside the services' own handlers are
``parley-combined``, not whichever service happened to be set up first (checked in a fresh
interpreter: both are process-wide)."""

import json
import subprocess
import sys

_PROBE = """
import json, logging
from opentelemetry import trace
from parley.combined.__main__ import SERVICES, build
apps, server = build()
handler, = logging.getLogger().handlers
print(json.dumps({
    "apps": len(apps),
    "services": [name for name, _ in SERVICES],
    "tracer": trace.get_tracer_provider().resource.attributes["service.name"],
    "log": handler.formatter.service,
}))
"""


def test_every_service_is_built_in_one_process_named_combined() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    built = json.loads(probe.stdout.strip().splitlines()[-1])
    assert built == {
        "apps": 5,
        "services": ["registry", "runtime", "messaging", "tasks", "deployment"],
        "tracer": "parley-combined",
        "log": "combined",
    }
