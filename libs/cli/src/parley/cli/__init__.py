"""The ``parley`` command line: operator commands over the event log (``export``,
``import``) today; the API client commands build on the same app."""
