"""Who is calling: principals and roles, API keys, JWT bearer tokens, WebSocket tickets, the
bootstrap admin key, and the scrubbing of secrets from text that is recorded or shown.

- :mod:`.principal`: :class:`Principal`, :class:`Role`, :class:`Action`, the role table;
- :mod:`.keys`: how API key secrets are made and stored (as a digest);
- :mod:`.keyindex`: :class:`KeyIndex`, every key folded from the store, looked up by digest;
- :mod:`.bearer`: :class:`BearerVerifier`, JWT verification with PyJWT (:class:`JwtSettings`);
- :mod:`.authn`: :class:`Authenticator`, the one entry point for request credentials;
- :mod:`.tickets`: :class:`TicketStore`, single-use WebSocket tickets in NATS KV;
- :mod:`.bootstrap`: :func:`bootstrap_admin_key`, the first admin key of a fresh stack;
- :mod:`.scrub`: :class:`Scrubber`, secrets out of text before it is recorded or shown.
"""

from parley.identity.authn import API_KEY_HEADER
from parley.identity.authn import Authenticator
from parley.identity.bearer import BearerVerifier
from parley.identity.bearer import JwtSettings
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key
from parley.identity.keyindex import KeyIndex
from parley.identity.principal import Action
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal
from parley.identity.principal import Role
from parley.identity.scrub import REDACTED
from parley.identity.scrub import Scrubber
from parley.identity.tickets import TicketStore

__all__ = [
    "ADMIN_KEY_FILE",
    "API_KEY_HEADER",
    "REDACTED",
    "Action",
    "AuthenticationError",
    "Authenticator",
    "BearerVerifier",
    "JwtSettings",
    "KeyIndex",
    "Principal",
    "Role",
    "Scrubber",
    "TicketStore",
    "bootstrap_admin_key",
]
