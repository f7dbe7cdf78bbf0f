"""Our code uses no deprecated API: every module imports, and the edge app builds, with each
DeprecationWarning an error.

pytest's ``filterwarnings = ["error"]`` covers what runs in the test process; the services
run as processes of their own in the e2e tests, where a warning is only a line in a log. Here
their start-up (importing every ``parley`` module, building the edge app) runs in a fresh
interpreter with ``-W error::DeprecationWarning``, which names each module that warns.
"""

import subprocess
import sys
import textwrap

import pytest

_START_UP = textwrap.dedent(
    """
    import importlib, pkgutil
    import parley

    for info in sorted(pkgutil.walk_packages(parley.__path__, "parley."), key=lambda i: i.name):
        if not info.name.endswith("__main__"):
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                print(f"{info.name}: {type(exc).__name__}: {exc}")
    try:
        from parley.edge.app import create_app
        from parley.edge.settings import load_settings

        assert create_app(load_settings()).openapi_schema.paths
    except Exception as exc:
        print(f"parley.edge.app create_app: {type(exc).__name__}: {exc}")
    """
)


@pytest.fixture(scope="module")
def warned() -> list[str]:
    """``<module>: <warning>`` for each module (or the edge app) that warned."""
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", _START_UP],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_no_module_outside_the_edge_uses_a_deprecated_api(warned: list[str]) -> None:
    assert [line for line in warned if not line.startswith("parley.edge")] == []


def test_the_edge_uses_no_deprecated_api(warned: list[str]) -> None:
    assert [line for line in warned if line.startswith("parley.edge")] == []
