"""``python -m parley.tasks``: run one tasks process until SIGTERM/SIGINT."""

from parley.kit.loop import run
from parley.kit.settings import from_env
from parley.tasks.app import create_app
from parley.tasks.settings import TasksSettings

if __name__ == "__main__":
    run(create_app(from_env(TasksSettings)).run())
