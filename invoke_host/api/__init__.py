"""The core HTTP API, one module per area, its paths relative to a version router (``router.py``) whose prefix is
``/api/v1`` or ``/api/v2`` (``versions.py``); handlers are given the host's services by name (``dependencies.py``)."""
