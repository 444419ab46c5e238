"""HTTP and websocket routes, one module per area, all under ``/api/v1``."""
