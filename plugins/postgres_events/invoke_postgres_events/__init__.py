"""Events between nodes: every node sends the events it emits to PostgreSQL; nodes with clients take the others'.

See :mod:`invoke_postgres_events.relay_sink` for the whole picture.
"""
