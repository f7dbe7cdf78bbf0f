# Parley's everyday commands. Bootstrap once: python3 -m pip install uv rust-just

set shell := ["bash", "-euo", "pipefail", "-c"]

# list the recipes
default:
    @just --list --unsorted

# install the workspace (one lockfile) into .venv, compiled: every process then loads
# bytecode even where PYTHONDONTWRITEBYTECODE is set, as on many CI machines (a stack
# started in 15 s, now 8 s on 2 cores: it compiled every module it imported, each time)
[group('setup')]
sync:
    uv sync --locked --quiet --compile-bytecode
    uv run --locked --no-sync python -m compileall -q -j 0 contracts/src libs/*/src services/*/src

# start the whole stack: nats-server (JetStream), every service, the edge on :8080
[group('run')]
up *args: sync
    uv run --locked python -m parley.devstack up {{ args }}

# run the test suite (real nats-server, real processes, real HTTP)
[group('test')]
test *args: sync
    uv run --locked pytest {{ args }}

# print benchmark figures (not a test)
[group('bench')]
bench *args: sync
    uv run --locked python -m bench {{ args }}

# lint and type-check (ruff, then mypy --strict over contracts, libs and services)
[group('lint')]
lint: sync
    uv run --locked ruff check .
    uv run --locked ruff format --check .
    uv run --locked mypy

# format the code
[group('lint')]
fmt: sync
    uv run --locked ruff format .
    uv run --locked ruff check --fix .

# regenerate the exported JSON Schemas and AsyncAPI document under contracts/
[group('contracts')]
schemas: sync
    uv run --locked python -m parley.contracts
