"""``python -m parley.registry``: run the registry service until SIGTERM/SIGINT."""

import asyncio

from parley.kit.settings import from_env
from parley.registry.app import create_app
from parley.registry.settings import RegistrySettings

if __name__ == "__main__":
    asyncio.run(create_app(from_env(RegistrySettings)).run())
