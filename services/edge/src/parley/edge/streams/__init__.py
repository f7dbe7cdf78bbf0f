"""Streams: events over SSE and WebSocket (filters, pump), and chat turns' frames."""
