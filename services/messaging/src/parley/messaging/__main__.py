"""``python -m parley.messaging``: run the messaging service until SIGTERM/SIGINT."""

import asyncio

from parley.kit.settings import from_env
from parley.messaging.app import create_app
from parley.messaging.settings import MessagingSettings

if __name__ == "__main__":
    asyncio.run(create_app(from_env(MessagingSettings)).run())
