"""The tasks service's long-running loops: the inbox (answers) and the watch (timers)."""
