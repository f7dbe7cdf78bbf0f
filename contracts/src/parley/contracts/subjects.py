"""NATS subject names. Named here once; handlers never spell a subject literal.

- ``parley.cmd.<service>.<verb>``: commands, request/reply, served by a queue group.
- ``parley.ext.<namespace>.cmd.<service>.<verb>``: the same commands from other systems (the
  NATS ``external`` user), acting in the subject's namespace whatever the body says.
- ``parley.ext.<namespace>.evt.<category>.<id>``: every event of a namespace again (the
  relay), kept in the JetStream stream :data:`EXT_EVENT_STREAM` of that namespace's NATS
  account, for other systems to read; the services reach that account's JetStream API under
  :func:`ext_js_api`.
- ``parley.qry.<service>.<name>``: queries that are not projections of events.
- ``parley.evt.<category>.<id>``: the event store's subjects, one per aggregate stream
  ``<category>-<id>`` (``agent-0193…`` → ``parley.evt.agent.0193…``).
- ``parley.stream.<...>``: ephemeral streams (token deltas), never stored.
- ``parley.health.<service>``: each service answers a health request here.
- ``parley.work.<kind>``: durable work items (JetStream work queue), e.g. executions.
- ``parley.inbox.agent.<id>`` / ``parley.inbox.tasks``: ACL deliveries (work queue).
- ``parley.notify.reply.<message id>``: a reply to a message was recorded (core NATS).
- ``parley.ctl.<kind>.<id>``: control of a running turn or execution (ping, cancel).

JetStream streams and KV buckets are named here too (:data:`EVENT_STREAM`, …).
"""

__all__ = [
    "DELTA_STREAM",
    "DELTA_SUBJECTS",
    "EVENTS_ALL",
    "EVENT_STREAM",
    "EXT_EVENT_STREAM",
    "EXT_RELAY_CONSUMER",
    "FILES_BUCKET",
    "INBOX_AGENTS",
    "INBOX_ALL",
    "INBOX_STREAM",
    "INBOX_TASKS",
    "LEASES_BUCKET",
    "RATE_BUCKET",
    "SLOTS_BUCKET",
    "TICKETS_BUCKET",
    "WORK_STREAM",
    "control",
    "ext_cmd",
    "ext_event",
    "ext_events",
    "ext_inbox",
    "ext_js_api",
    "ext_namespace",
    "inbox",
    "reply_notice",
    "stream",
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
STREAM_PREFIX = "parley.stream"

EVENT_STREAM = "PARLEY_EVENTS"
"""The JetStream stream that holds every event (subjects :data:`EVENTS_ALL`)."""
WORK_STREAM = "PARLEY_WORK"
"""The work-queue stream of durable work items (subjects :data:`WORK_ALL`)."""
INBOX_STREAM = "PARLEY_INBOX"
"""The work-queue stream of ACL deliveries (subjects :data:`INBOX_ALL`)."""
INBOX_ALL = "parley.inbox.>"
INBOX_AGENTS = "parley.inbox.agent.>"
"""Every agent's deliveries (the runtime's consumer)."""
INBOX_TASKS = "parley.inbox.tasks"
"""Every message to a ``task:`` or ``run:`` participant (the tasks service's consumer)."""
DELTA_STREAM = "PARLEY_DELTAS"
"""The memory stream that keeps recent token deltas for resuming a turn's stream."""
DELTA_SUBJECTS = [f"{STREAM_PREFIX}.>"]
SLOTS_BUCKET = "parley-slots"
"""KV bucket of agents' instance slots."""
LEASES_BUCKET = "parley-leases"
"""KV bucket of leader leases (the scheduler)."""
FILES_BUCKET = "parley-files"
"""Object store bucket of session files."""
RATE_BUCKET = "parley-ratelimits"
"""KV bucket of the edge's rate-limit windows, shared by every edge process."""
TICKETS_BUCKET = "parley-tickets"
"""KV bucket of single-use WebSocket tickets (``parley.identity.tickets``)."""


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


def inbox(receiver: str) -> str:
    """Work-queue subject a receiver's deliveries go to (``task:``/``run:`` → the tasks inbox)."""
    if receiver.startswith(("task:", "run:")):
        return INBOX_TASKS
    return f"parley.inbox.agent.{receiver}"


def reply_notice(message_id: str) -> str:
    """Core NATS subject on which a reply to ``message_id`` is announced."""
    return f"parley.notify.reply.{message_id}"


def control(kind: str, ident: str) -> str:
    """Control subject of a running ``kind`` (``turn``, ``execution``) with id ``ident``."""
    return f"parley.ctl.{kind}.{ident}"


def stream(kind: str, ident: str) -> str:
    """Ephemeral (never stored) subject of one ``kind`` of stream, e.g. a turn's deltas."""
    return f"{STREAM_PREFIX}.{kind}.{ident}"


EXTERNAL_PREFIX = "parley.ext"


def ext_cmd(namespace: str, service: str, verb: str) -> str:
    """Subject of a command from another system, acting in ``namespace`` (``*``: any)."""
    return f"{EXTERNAL_PREFIX}.{namespace}.cmd.{service}.{verb}"


def ext_namespace(subject: str) -> str:
    """The namespace an external command subject (:func:`ext_cmd`) acts in."""
    return subject.split(".")[2]


def ext_inbox(namespace: str) -> str:
    """The reply-subject prefix (``inbox_prefix`` of nats-py) of external clients of
    ``namespace``: their replies, and nobody else's, are readable to them."""
    return f"_INBOX_ext.{namespace}"


EXT_EVENT_STREAM = "PARLEY_EXT_EVENTS"
"""The JetStream stream of a namespace's events in its external account (subjects
:func:`ext_events`)."""
EXT_RELAY_CONSUMER = "parley-ext-relay"
"""The durable consumer of :data:`EVENT_STREAM` that feeds :data:`EXT_EVENT_STREAM`."""


def ext_events(namespace: str) -> str:
    """Subject filter of every event of ``namespace`` on the external side."""
    return f"{EXTERNAL_PREFIX}.{namespace}.evt.>"


def ext_event(namespace: str, subject: str) -> str:
    """The external subject of the event stored on ``subject`` (``parley.evt.<category>.<id>``
    → ``parley.ext.<namespace>.evt.<category>.<id>``)."""
    return f"{EXTERNAL_PREFIX}.{namespace}.evt.{subject.removeprefix(EVENTS_PREFIX + '.')}"


def ext_js_api(namespace: str) -> str:
    """The JetStream API prefix under which the services reach the external account of
    ``namespace`` (``nc.jetstream(prefix=...)``)."""
    return f"$JS.ext.{namespace}.API"
