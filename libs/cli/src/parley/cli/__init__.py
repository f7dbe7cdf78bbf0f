"""The `parley` command line: the edge's API from a terminal (agents, clusters, chat,
messages, tasks, deployments, events, keys; `docs/cli.md`) and the event log out and in
(`export`, `import`, straight over NATS)."""
