"""The web console of Invoke Host: a page at ``/`` and its prebuilt assets under ``/console/``.

The front end (TypeScript + Preact, under ``plugins/web_console/frontend``) is bundled by
``scripts/build-console`` into ``static/``; the bundle is committed, so the distribution serves it as is.
"""
