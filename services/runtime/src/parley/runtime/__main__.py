"""``python -m parley.runtime``: run one runtime process until SIGTERM/SIGINT."""

from parley.kit.loop import run
from parley.runtime.app import create_app
from parley.runtime.settings import load_settings

if __name__ == "__main__":
    run(create_app(load_settings()).run())
