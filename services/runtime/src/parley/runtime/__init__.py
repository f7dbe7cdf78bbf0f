"""The runtime service: sessions, chat turns, tools, strategies, executions, budgets."""
