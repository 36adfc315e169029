"""The API's door: what every request meets before (or instead of) a resolver.

The HTTP edge's answers (`http`: methods, JSON shape, credentials), the body size limit
(`request_size`), the query cost checks before parsing (`query_cost`), the parsed-document cache
(`documents`), the rate limits per caller and organization (`rate_limits`) and the WebSocket
protocol's own limits (`websocket`). None of it knows a domain type."""
