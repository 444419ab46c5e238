"""Graphs of nodes: the model built from the frozen registry, and validation that reports every problem."""

from invoke_host.graph.edges import Edge, EdgeConnection
from invoke_host.graph.errors import GraphError, GraphValidationError, refusal_message
from invoke_host.graph.fingerprint import registry_fingerprint
from invoke_host.graph.model import COLLECT_TYPE, ITERATE_TYPE, GraphBase, graph_model
from invoke_host.graph.validation import ValidatedGraph, load_validated_graph, parse_graph, validate_graph

__all__ = [
    "COLLECT_TYPE",
    "ITERATE_TYPE",
    "Edge",
    "EdgeConnection",
    "GraphBase",
    "GraphError",
    "GraphValidationError",
    "ValidatedGraph",
    "graph_model",
    "load_validated_graph",
    "parse_graph",
    "refusal_message",
    "registry_fingerprint",
    "validate_graph",
]
