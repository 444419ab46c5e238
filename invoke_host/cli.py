"""``invoke-host``: serve, and look at what the plugins gave."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from invoke_host.config import HostConfig

__all__ = ["main"]


def _config(**overrides: Any) -> HostConfig:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return HostConfig(**given)
    except Exception as exc:
        raise click.UsageError(str(exc)) from exc


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
def main() -> None:
    """Invoke Host: run image-generation node graphs, with every capability from plugins."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; any other address needs --token or --no-auth)")
@click.option("--port", type=int, help="Port to listen on (default 9090)")
@click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")
@click.option("--token", help="Access token every request must present (or INVOKE_HOST_TOKEN)")
@click.option("--no-auth", is_flag=True, default=None, help="Serve a non-loopback address without a token")
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR")
def serve(**options: Any) -> None:
    """Start the HTTP and websocket server."""
    import uvicorn

    from invoke_host.app import create_app

    config = _config(**options)
    _setup_logging(config.log_level)
    try:
        config.check_bind()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.no_auth and config.token is None:
        logging.getLogger("invoke_host").warning(
            "Serving %s without an access token (--no-auth): anyone who can reach this address can run graphs",
            config.host,
        )
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level.lower())


def _host(root: Path | None = None) -> Any:
    from invoke_host.host import build_host

    config = _config(root=root)
    _setup_logging("WARNING")
    return build_host(config)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")
def plugins(as_json: bool) -> None:
    """List plugins: what loaded, what failed and why."""
    import msgspec

    from invoke_host.api.plugins import plugin_info

    host = _host()
    infos = [plugin_info(r) for r in host.registry.plugins]
    if as_json:
        click.echo(msgspec.json.encode(infos).decode())
        return
    if not infos:
        click.echo("No plugins found.")
    for info in infos:
        dist = f"{info.distribution} {info.version}" if info.distribution else info.source
        counts = ", ".join(f"{len(v)} {k}" for k, v in info.registered.items()) or "nothing registered"
        click.echo(f"{info.name:24} {info.status:8} {dist:28} {counts}")
        if info.error:
            click.echo(f"    error: {info.error}")
        for refused in info.refused:
            click.echo(f"    refused: {refused.splitlines()[0]}")
    if any(i.status == "failed" for i in infos):
        click.echo("\nSome plugins failed; see the errors above. Block one with INVOKE_HOST_PLUGINS_BLOCK=<name>.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full node templates as JSON")
def nodes(as_json: bool) -> None:
    """List the registered node types."""
    import msgspec

    from invoke_host.node_templates import node_templates

    host = _host()
    if as_json:
        click.echo(msgspec.json.encode(node_templates(host.registry)).decode())
        return
    for type_id, reg in host.registry.invocations.items():
        info = reg.value.invocation_info()
        click.echo(f"{type_id:32} {info.title if info else '':32} {reg.plugin}")


@main.command()
def openapi() -> None:
    """Print the OpenAPI document (every plugin's nodes included)."""
    from invoke_host.app import create_app
    from invoke_host.openapi_document import openapi_document

    _setup_logging("WARNING")
    app = create_app(_config())
    json.dump(openapi_document(app), sys.stdout, indent=2)
    sys.stdout.write("\n")


@main.command()
@click.argument("graph_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")
@click.option("--quiet", is_flag=True, help="Do not report each node on stderr")
def run(graph_file: Path, root: Path | None, quiet: bool) -> None:
    """Run GRAPH_FILE (a graph as JSON) in-process and print each node's outputs as JSON."""
    from invoke_host.engine import EngineEvent, InvocationComplete, InvocationError, OutputCache, run_graph
    from invoke_host.graph import GraphValidationError

    host = _host(root)

    def report(event: EngineEvent) -> None:
        if isinstance(event, InvocationComplete):
            click.echo(f"ran {event.source_node_id} ({event.invocation_type}){' [cached]' if event.cached else ''}",
                       err=True)
        elif isinstance(event, InvocationError):
            click.echo(f"FAILED {event.source_node_id} ({event.invocation_type}): {event.error_type}: "
                       f"{event.error_message}", err=True)

    try:
        result = run_graph(host, graph_file.read_bytes(), cache=OutputCache(), on_event=None if quiet else report)
    except GraphValidationError as exc:
        click.echo(f"{graph_file} is not a valid graph:", err=True)
        for error in exc.errors:
            click.echo(f"  - {error}", err=True)
        sys.exit(2)
    payload = {
        "status": result.status,
        "outputs": {k: [o.model_dump(mode="json") for o in v] for k, v in result.outputs.items()},
        "errors": [
            {k: v for k, v in e.to_dict().items() if k != "traceback"} for e in result.errors
        ],
    }
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if result.status != "completed":
        sys.exit(1)


if __name__ == "__main__":
    main()
