"""The service kit: settings, structured logs, tracing and the FastStream bootstrap."""
