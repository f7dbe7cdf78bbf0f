"""``python -m parley.runtime``: run one runtime process until SIGTERM/SIGINT."""

import asyncio

from parley.kit.settings import from_env
from parley.runtime.app import create_app
from parley.runtime.settings import RuntimeSettings

if __name__ == "__main__":
    asyncio.run(create_app(from_env(RuntimeSettings)).run())
