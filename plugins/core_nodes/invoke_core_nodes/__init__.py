"""Invoke Host's core nodes, registered through the same hook as any third-party pack.

Type ids and field names follow InvokeAI's, so a graph written for one runs on the other.
"""

__all__: list[str] = []
