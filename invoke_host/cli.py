"""``invoke-host``: serve, and look at what the plugins gave.

Each command imports the parts of the host it uses inside itself (no cycle is behind it), so ``invoke-host --help``
loads none of them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    # Imported where a command builds its config: `serve` and `worker` start the process again on the system
    # allocator first (memory.py), and the config module (pydantic) cost that first,
    # discarded interpreter about 0.2 s of CPU on every start (docs/benchmarks.md, start-up).
    from invoke_host.config import HostConfig

__all__ = ["main"]


def _config(**overrides: Any) -> HostConfig:
    from invoke_host.config import HostConfig

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return HostConfig(**given)
    except Exception as exc:
        raise click.UsageError(str(exc)) from exc


def _setup_logging(level: str, config: HostConfig) -> None:
    from invoke_host.logging_config import configure_logging

    try:
        configure_logging(level, max_backlog=config.max_log_backlog)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _refuse_token_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "--token is no longer accepted: a token on the command line is visible to every user in `ps` and "
            "lands in shell history. Put it in a file readable only by you and pass --token-file PATH, or set "
            "INVOKE_HOST_TOKEN (or INVOKE_HOST_TOKEN_FILE) in the server's environment."
        )


class _Commands(click.Group):
    """The commands, with ``packs`` imported only when it is asked for (or listed, for ``--help``).

    Its module imports subprocess, shutil and its dataclasses: 11-17 ms of every ``serve`` start, paid twice (before
    the restart on the system allocator and after it) for a command ``serve`` never runs (docs/benchmarks.md).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "packs"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "packs":
            # `invoke-host packs wrap`: InvokeAI node folders as plugin distributions
            from invoke_host.packs_cli import packs

            return packs
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
def main() -> None:
    """Invoke Host: run image-generation node graphs, with every capability from plugins."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; any other address needs --token-file or --no-auth)")
@click.option("--port", type=int, help="Port to listen on (default 9090)")
@click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the access token every request must present (or INVOKE_HOST_TOKEN / INVOKE_HOST_TOKEN_FILE)",
)
@click.option("--token", hidden=True, expose_value=False, callback=_refuse_token_option)
@click.option("--no-auth", is_flag=True, default=None, help="Serve a non-loopback address without a token")
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR")
@click.option(
    "--database-url",
    help="postgresql://user@host/db: share a PostgreSQL database (or INVOKE_HOST_DATABASE_URL; keep a password in "
    "that or in ~/.pgpass, not here, where `ps` shows it)",
)
@click.option(
    "--no-processor", "no_processor", is_flag=True, default=False,
    help="An API node: store queue items, run none (workers run them; INVOKE_HOST_PROCESSOR_ENABLED=false)",
)
@click.option("--devices", help="Run items on these devices, one processor each (cuda:0,cuda:1; INVOKE_HOST_DEVICES)")
def serve(no_processor: bool, **options: Any) -> None:
    """Start the HTTP and websocket server."""
    from invoke_host.memory import use_system_allocator

    use_system_allocator()  # first: it restarts the process (RSS returns to idle after large sessions; memory.py)
    from invoke_host.start_gc import collections_paused

    # No cyclic collections while the host's modules, its plugins' classes and the app are made; what they made
    # lives as long as the server. The pause lasts until serving freezes it out of later collections, which also
    # turns the collector back on (heap_freeze.freeze_startup_objects): a collection between the two would walk
    # every start-up object once (start_gc.py, heap_freeze.py). The block ends only when the server stops.
    with collections_paused():
        app, config = _built_app(no_processor, options)
        _serve_or_exit(app, config)


def _built_app(no_processor: bool, options: dict[str, Any]) -> tuple[Any, HostConfig]:
    from invoke_host.app import create_app

    config = _config(**options, processor_enabled=False if no_processor else None)
    _setup_logging(config.log_level, config)
    try:
        config.check_bind()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.token_file is not None and os.name == "posix" and config.token_file.stat().st_mode & 0o077:
        logging.getLogger("invoke_host").warning(
            "The token file %s can be read by other users of this machine; chmod 600 it", config.token_file
        )
    if config.no_auth and config.token is None:
        logging.getLogger("invoke_host").warning(
            "Serving %s without an access token (--no-auth): anyone who can reach this address can run graphs",
            config.host,
        )
    from invoke_host.host import HostStartupError

    try:
        return create_app(config), config
    except HostStartupError as exc:
        raise click.ClickException(str(exc)) from None


def _serve_or_exit(app: Any, config: HostConfig) -> None:
    from invoke_host.host import HostStartupError
    from invoke_host.serving import serve_app

    try:
        started = serve_app(app, config)
    except HostStartupError as exc:
        # One line that says what is wrong and what to do; the traceback would only bury it.
        raise click.ClickException(str(exc)) from None
    if not started:
        sys.exit(3)  # uvicorn.run's exit status for a server that failed to start (a port in use, say)


@main.command()
@click.option("--name", "worker_name", help="This worker's id in the queue (default <hostname>-<pid>)")
@click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")
@click.option("--devices", help="Run items on these devices, one processor each (cuda:0,cuda:1; INVOKE_HOST_DEVICES)")
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR")
@click.option(
    "--database-url",
    help="postgresql://user@host/db: the database the API nodes share (or INVOKE_HOST_DATABASE_URL; keep a "
    "password in that or in ~/.pgpass, not here, where `ps` shows it)",
)
def worker(**options: Any) -> None:
    """Run queue items and serve no HTTP: a worker node beside API nodes on one database (docs/deploy.md)."""
    from invoke_host.memory import use_system_allocator

    use_system_allocator()  # first: it restarts the process (memory.py)
    from invoke_host.start_gc import collections_paused

    # As in `serve`: paused until run_worker freezes what start-up made, which turns the collector back on.
    with collections_paused():
        from invoke_host.host import HostStartupError
        from invoke_host.worker import run_worker

        config = _config(**options)
        _setup_logging(config.log_level, config)
        try:
            run_worker(config)
        except HostStartupError as exc:
            raise click.ClickException(str(exc)) from None


def _host(root: Path | None = None, log_level: str | None = None) -> Any:
    from invoke_host.api.router import api_routers
    from invoke_host.host import NodeShape, build_host

    config = _config(root=root)
    _setup_logging(log_level or "WARNING", config)
    # The app's routes, so plugin routes are judged (and refused) exactly as `serve` would judge them. No queue:
    # these commands may run beside a server on the same root, whose queue items are its own.
    return build_host(config, core_routes=api_routers(), shape=NodeShape.SERVICES)


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

    config = _config()
    _setup_logging("WARNING", config)
    app = create_app(config)
    json.dump(openapi_document(app), sys.stdout, indent=2)
    sys.stdout.write("\n")


@main.group()
def models() -> None:
    """List, install, delete and scan models."""


def _run_models(root: Path | None, work: Any) -> Any:
    """Start the host's services, run ``work(manager)``, stop them; errors become CLI errors."""
    import asyncio

    from invoke_sdk.models.records import ModelRecordError

    from invoke_host.models.manager import ModelsUnavailableError

    host = _host(root)

    async def run() -> Any:
        await host.start()
        try:
            return await work(host.models)
        finally:
            await host.stop()

    try:
        return asyncio.run(run())
    except (ModelRecordError, ModelsUnavailableError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


_root_option = click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")


@models.command("list")
@_root_option
@click.option("--type", "model_type", help="Only this type (main, vae, lora ...)")
@click.option("--base", help="Only this base (sd-1, sd-2, sdxl ...)")
@click.option("--json", "as_json", is_flag=True, help="Print the configs as JSON")
def models_list(root: Path | None, model_type: str | None, base: str | None, as_json: bool) -> None:
    """List installed models."""

    async def work(manager: Any) -> list[Any]:
        return list(await manager.store.search(type=model_type, base=base))

    found = _run_models(root, work)
    if as_json:
        click.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    if not found:
        click.echo("No models installed.")
    for c in found:
        click.echo(f"{c.key}  {c.base.value:12} {c.type.value:12} {c.format.value:14} {c.name}")


@models.command("install")
@_root_option
@click.argument("source")
@click.option("--inplace", is_flag=True, help="Register a local model where it lies instead of copying it")
@click.option("--variant", help="Hugging Face weights variant, e.g. fp16")
@click.option("--subfolder", help="Hugging Face repo subfolder")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="Override a probed attribute")
@click.option("--access-token", envvar="HF_TOKEN", help="Token for gated repos or private URLs")
def models_install(
    root: Path | None,
    source: str,
    inplace: bool,
    variant: str | None,
    subfolder: str | None,
    overrides: tuple[str, ...],
    access_token: str | None,
) -> None:
    """Install a model from a local path, an http(s) URL or a Hugging Face repo id (owner/repo[:subfolder])."""
    import asyncio

    config: dict[str, str] = {}
    for item in overrides:
        field, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--set takes FIELD=VALUE, not {item!r}")
        config[field.strip()] = value

    async def work(manager: Any) -> Any:
        job = manager.installer.import_model(
            source, inplace=inplace, variant=variant, subfolder=subfolder, config=config, access_token=access_token
        )
        waiting = asyncio.ensure_future(manager.installer.wait(job.id))
        with click.progressbar(length=100, label=f"Installing {source}", show_percent=True) as bar:
            shown = 0
            while not waiting.done():
                await asyncio.sleep(0.2)
                if job.total_bytes:
                    percent = min(100, job.bytes * 100 // job.total_bytes)
                    bar.update(percent - shown)
                    shown = percent
            bar.update(100 - shown)
        return await waiting

    job = _run_models(root, work)
    if job.status.value != "completed":
        raise click.ClickException(f"install {job.status.value}: {job.error or ''}")
    out = job.config_out or {}
    kind = f"{out.get('base')} {out.get('type')}, {out.get('format')}"
    click.echo(f"Installed {out.get('name')} ({kind}): {out.get('key')}")


@models.command("delete")
@_root_option
@click.argument("key")
@click.option("--unregister", is_flag=True, help="Remove only the record; keep the files")
def models_delete(root: Path | None, key: str, unregister: bool) -> None:
    """Delete a model: its record, and its files when they lie inside the models directory."""

    async def work(manager: Any) -> Any:
        return await (manager.unregister(key) if unregister else manager.delete(key))

    config = _run_models(root, work)
    if unregister or config.inplace is not False:
        # A model registered in place keeps its files whichever was asked: say so rather than "Deleted".
        click.echo(f"Unregistered {config.name} ({key}); its files stay where they are")
    else:
        click.echo(f"Deleted {config.name} ({key}) and its files")


@models.command("scan")
@_root_option
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
def models_scan(root: Path | None, folder: Path) -> None:
    """List the models in FOLDER and whether each is installed."""

    async def work(manager: Any) -> list[dict[str, Any]]:
        return list(await manager.scan_folder(folder))

    for entry in _run_models(root, work):
        click.echo(f"{'installed' if entry['is_installed'] else 'new      '}  {entry['path']}")
@main.command()
@click.argument("graph_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(path_type=Path), help="Data root (default ./invoke-root)")
@click.option("--set", "sets", multiple=True, metavar="NODE.FIELD=VALUE",
              help="Set a node's field: JSON where the field takes it (42, true, [1,2]), else the text; repeatable")
@click.option("--batch", "batches", multiple=True, metavar="NODE.FIELD=VALUES",
              help="Run once per value (a JSON list, or comma-separated); several --batch run every combination")
@click.option("--quiet", is_flag=True, help="Do not report nodes, progress and model loads on stderr")
@click.option("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
def run(
    graph_file: Path, root: Path | None, sets: tuple[str, ...], batches: tuple[str, ...], quiet: bool,
    log_level: str | None,
) -> None:
    """Run GRAPH_FILE (a graph as JSON) in-process and print each node's outputs as JSON.

    It may run beside a server on the same data root: it reads that root's models and saves images into its
    store, and never touches the server's queue. With --batch it prints {"status", "sessions": [...]}, one
    entry per run with the values it was given.
    """
    # Library progress bars (transformers' "Loading weights", diffusers' and download bars) would tangle with
    # ours on the terminal; model loads are reported by the progress lines instead. Set before they are imported.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import asyncio

    from invoke_host.engine import OutputCache, run_graph_async
    from invoke_host.graph import GraphValidationError
    from invoke_host.graph_overrides import OverrideError, apply_sets, batch_with_data
    from invoke_host.limits import Limits
    from invoke_host.queue.batch import BatchError, prepare_items
    from invoke_host.run_progress import RunProgress

    host = _host(root, log_level)
    try:
        graph = json.loads(graph_file.read_bytes())
    except ValueError as exc:
        raise click.UsageError(f"{graph_file} is not JSON: {exc}") from exc
    if not isinstance(graph, dict):
        raise click.UsageError(f"{graph_file} holds JSON, but not a graph object ({{\"nodes\": ..., \"edges\": ...}})")
    sessions: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        graph = apply_sets(host.registry, graph, sets)
        if batches:
            batch = batch_with_data(host.registry, graph, batches)
            _record, items = prepare_items("cli", batch, host.registry, host.config.max_batch_size,
                                           Limits.from_config(host.config))
            for item in items:
                values = {f"{v.node_path}.{v.field_name}": v.value for v in item.field_values or []}
                sessions.append((values, json.loads(item.session_json)["graph"]))
        else:
            sessions.append(({}, graph))
    except (OverrideError, BatchError) as exc:
        raise click.UsageError(str(exc)) from exc

    cache = OutputCache()
    forward_loads = host.model_load_listener

    async def execute() -> list[Any]:
        # The host's services (the model records nodes read) live on this loop; nodes run in a worker thread.
        await host.start()
        results = []
        try:
            for number, (values, session_graph) in enumerate(sessions, 1):
                progress = None
                if not quiet:
                    prefix = f"[{number}/{len(sessions)}] " if len(sessions) > 1 else ""
                    progress = RunProgress(sys.stderr, prefix=prefix)
                    host.model_load_listener = _both(forward_loads, progress.model_load)
                    if values:
                        click.echo(f"{prefix}{' '.join(f'{k}={json.dumps(v)}' for k, v in values.items())}", err=True)
                try:
                    results.append(await run_graph_async(host, session_graph, cache=cache, on_event=progress))
                finally:
                    if progress is not None:
                        progress.close()
            return results
        finally:
            await host.stop()

    try:
        results = asyncio.run(execute())
    except GraphValidationError as exc:
        click.echo(f"{graph_file} is not a valid graph:", err=True)
        for error in exc.errors:
            click.echo(f"  - {error}", err=True)
        sys.exit(2)
    payloads = [_session_payload(result) for result in results]
    failed = [p["status"] for p in payloads if p["status"] != "completed"]
    if batches:
        body: dict[str, Any] = {
            "status": failed[0] if failed else "completed",
            "sessions": [{"values": values, **p} for (values, _graph), p in zip(sessions, payloads, strict=True)],
        }
    else:
        body = payloads[0]
    json.dump(body, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if failed:
        sys.exit(1)


def _both(first: Any, second: Any) -> Any:
    """A model-load listener that calls ``first`` (if any) and then ``second``."""

    def both(event: Any) -> None:
        if first is not None:
            first(event)
        second(event)

    return both


def _session_payload(result: Any) -> dict[str, Any]:
    return {
        "status": result.status,
        "outputs": {k: [o.model_dump(mode="json") for o in v] for k, v in result.outputs.items()},
        "errors": [{k: v for k, v in e.to_dict().items() if k != "traceback"} for e in result.errors],
    }


if __name__ == "__main__":
    main()
