"""NATS subject names. Named here once; handlers never spell a subject literal.

- ``parley.cmd.<service>.<verb>``: commands, request/reply, served by a queue group.
- ``parley.qry.<service>.<name>``: queries that are not projections of events.
- ``parley.evt.<category>.<id>``: the event store's subjects, one per aggregate stream
  ``<category>-<id>`` (``agent-0193…`` → ``parley.evt.agent.0193…``).
- ``parley.stream.<...>``: ephemeral streams (token deltas), never stored.
- ``parley.health.<service>``: each service answers a health request here.
- ``parley.work.<kind>``: durable work items (JetStream work queue), e.g. executions.
"""

__all__ = [
    "EVENTS_ALL",
    "EVENTS_PREFIX",
    "QUEUE_PREFIX",
    "WORK_ALL",
    "cmd",
    "event_stream_name",
    "events",
    "events_of_category",
    "health",
    "qry",
    "queue",
    "work",
]

EVENTS_PREFIX = "parley.evt"
EVENTS_ALL = f"{EVENTS_PREFIX}.>"
QUEUE_PREFIX = "parley"
WORK_ALL = "parley.work.>"


def cmd(service: str, verb: str) -> str:
    """Subject of a command served by ``service``."""
    return f"parley.cmd.{service}.{verb}"


def qry(service: str, name: str) -> str:
    """Subject of a query served by ``service``."""
    return f"parley.qry.{service}.{name}"


def events(stream: str) -> str:
    """Subject that holds the events of aggregate stream ``<category>-<id>``."""
    category, _, rest = stream.partition("-")
    return f"{EVENTS_PREFIX}.{category}.{rest}"


def events_of_category(category: str) -> str:
    """Subject filter matching every stream of one category (e.g. ``agent``)."""
    return f"{EVENTS_PREFIX}.{category}.>"


def event_stream_name(subject: str) -> str:
    """The aggregate stream name of an event-store subject (inverse of :func:`events`)."""
    category, _, rest = subject.removeprefix(EVENTS_PREFIX + ".").partition(".")
    return f"{category}-{rest}"


def health(service: str) -> str:
    """Subject a service answers health requests on."""
    return f"parley.health.{service}"


def queue(service: str) -> str:
    """Queue group name shared by every instance of ``service``."""
    return f"{QUEUE_PREFIX}-{service}"


def work(kind: str) -> str:
    """Subject of durable work items of one ``kind`` (a JetStream work queue)."""
    return f"parley.work.{kind}"
