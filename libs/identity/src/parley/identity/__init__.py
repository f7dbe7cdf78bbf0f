"""Who is calling: principals and roles, API keys, JWT bearer tokens, WebSocket tickets, the
bootstrap admin key, and the scrubbing of secrets from text that is recorded or shown."""
