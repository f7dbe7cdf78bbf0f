"""The dev stack: a real nats-server with JetStream, every service as a process, the edge."""
