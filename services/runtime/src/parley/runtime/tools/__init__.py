"""Built-in tools: `http_request`, `calculator`, `current_time`, `read_file`, `json_query`,
`send_message`, and `remember`/`recall` (offered to agents with ``memory.enabled``).

Each tool is one ``async`` function declared with :func:`~parley.runtime.tools.base.builtin`
against the config and argument Structs of :mod:`parley.contracts.tools`; the runtime calls
them only through :func:`~parley.runtime.tools.registry.run_tool`.
"""

from parley.runtime.tools import base
from parley.runtime.tools import registry
from parley.runtime.tools.base import *  # noqa: F403
from parley.runtime.tools.registry import *  # noqa: F403

__all__ = base.__all__ + registry.__all__
