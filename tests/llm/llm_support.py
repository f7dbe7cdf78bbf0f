"""Constants the provider adapter tests share (a module of its own: ``from conftest import``
finds whichever ``conftest`` pytest loaded last when several test folders run together)."""

SECRET_KEY = "sk-test-SECRET-0123456789"
"""The key the adapters send to the wire server; it must never be shown."""
