"""``python -m parley.deployment``: run one deployment process until SIGTERM/SIGINT."""

from parley.deployment.app import create_app
from parley.deployment.settings import DeploymentSettings
from parley.kit.loop import run
from parley.kit.settings import from_env

if __name__ == "__main__":
    run(create_app(from_env(DeploymentSettings)).run())
