"""``python -m parley.registry``: run the registry service until SIGTERM/SIGINT."""

from parley.kit.loop import run
from parley.kit.settings import from_env
from parley.registry.app import create_app
from parley.registry.settings import RegistrySettings

if __name__ == "__main__":
    run(create_app(from_env(RegistrySettings)).run())
