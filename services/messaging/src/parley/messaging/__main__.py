"""``python -m parley.messaging``: run the messaging service until SIGTERM/SIGINT."""

from parley.kit.loop import run
from parley.kit.settings import from_env
from parley.messaging.app import create_app
from parley.messaging.settings import MessagingSettings

if __name__ == "__main__":
    run(create_app(from_env(MessagingSettings)).run())
