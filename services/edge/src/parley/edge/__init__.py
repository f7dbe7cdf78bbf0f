"""The edge: Parley's HTTP surface (REST, SSE, WebSocket) over commands and projections.

=====================  ==================================================================
``app``                ``create_app(settings)``: the Litestar app and its start-up wiring
``dependencies``       typed ``Provide`` dependencies: namespace, ``If-Match``, the
                       projections, and :class:`~parley.edge.dependencies.Writes`
                       (send a command, wait for the projections: read your writes)
``commands``           the NATS command client (request/reply to the services)
``http/``              bodies, errors (the one mapping to the envelope), guards, OpenAPI,
                       the ``Data[T]``/``Page[T]`` envelopes, paging, the query and header
                       parameters routes share (``params``), request ids;
                       ``http/auth``: the one authentication middleware (keys, JWTs,
                       tickets, WebSocket ``Origin``) and the role/namespace guard
``controllers/``       one module per REST resource (``keys``: API keys, ws-tickets)
``streams/``           events over SSE and WebSocket, chat turns' frames (SSE, WebSocket)
``projections/``       the read models the handlers answer from
=====================  ==================================================================
"""
