"""The host's settings: flags override environment variables (``INVOKE_HOST_*``), which override defaults.

A plain pydantic model that reads its environment variables itself. It was a pydantic-settings ``BaseSettings``,
whose import (its sources: dotenv, secrets, cloud vaults, a command-line parser) cost every start 65-85 ms of CPU
for the one thing used here: ``INVOKE_HOST_<FIELD>``, any case, handed to the field as the string it is
(docs/benchmarks.md, start-up, 2026-12-02). The list fields split commas themselves, as they did under it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ENV_PREFIX", "HostConfig", "is_loopback_host"]

ENV_PREFIX = "INVOKE_HOST_"
"""Each field ``name`` is read from the environment variable ``INVOKE_HOST_NAME`` (in any case)."""

# RFC 7230 token characters: what an HTTP header and a websocket subprotocol can carry as they are.
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DEVICE = re.compile(r"cpu|mps|cuda(:[0-9]+)?")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_token_file(path: Path) -> str:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the access token from token_file {path}: {exc}") from None
    token = text.strip()
    if not token:
        raise ValueError(f"the token_file {path} is empty")
    return token


def _from_environment(fields: dict[str, Any]) -> dict[str, str]:
    """The fields set by environment variables, as their strings (pydantic parses them as it would a flag)."""
    names = {ENV_PREFIX + name.upper(): name for name in fields}
    return {names[key.upper()]: value for key, value in os.environ.items() if key.upper() in names}


class HostConfig(BaseModel):
    """Everything the host can be told at start-up."""

    # As BaseSettings had it: unknown keywords are refused, and defaults go through the validators too.
    model_config = ConfigDict(extra="forbid", validate_default=True)

    def __init__(self, **values: Any) -> None:
        # Keywords (the command's flags, a test's arguments) win over the environment.
        super().__init__(**{**_from_environment(type(self).model_fields), **values})

    root: Path = Field(default=Path("invoke-root"), description="Data root: database, images, models")
    host: str = Field(default="127.0.0.1", description="Address to bind")
    port: int = Field(default=9090, ge=0, le=65535)
    token: str | None = Field(default=None, repr=False, description="Access token every request must present")
    token_file: Path | None = Field(
        default=None, description="File holding the access token (instead of token; keeps it out of ps and env)"
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to besides loopback names and its bound address; '*': any "
        "(dangerous without a token: it re-opens DNS rebinding)",
    )
    no_auth: bool = Field(default=False, description="Serve a non-loopback address without a token")
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    plugins_allow: list[str] | None = Field(
        default=None, description="If set, only these entry-point plugins (by name or distribution) load"
    )
    plugins_block: list[str] = Field(
        default_factory=list, description="Entry-point plugins (by name or distribution) never loaded"
    )
    disable_plugin_autoload: bool = Field(default=False, description="Load no entry-point plugins at all")
    node_catalogue: bool = Field(
        default=True,
        description="Keep a catalogue of the installed node types (<root>/node-catalogue.json): a start whose "
        "plugins and their files are unchanged imports a pack's node classes only when first used",
    )
    log_level: str = "INFO"
    max_log_backlog: int = Field(
        default=10_000, ge=1,
        description="Log records waiting to be written to stderr (by a thread of their own); when full, new ones are "
        "dropped and counted",
    )
    models_dir: Path | None = Field(default=None, description="Where installed models go (default <root>/models)")
    model_sync_on_start: bool = Field(default=True, description="Check recorded models against the disk at start")
    download_allow_private: bool = Field(default=False, description="Let URL installs reach private addresses")
    download_allow_loopback: bool = Field(default=False, description="Let URL installs reach loopback addresses")
    download_concurrency: int = Field(default=3, ge=1, le=16, description="Model downloads run at once")
    download_max_bytes: int = Field(
        default=100 * 1024**3, ge=1, description="Largest model download in bytes (all files of a Hugging Face install)"
    )
    download_timeout_s: float = Field(default=6 * 3600, gt=0, description="Most seconds one model download may take")
    download_stall_timeout_s: float = Field(
        default=60, gt=0, description="Most seconds a model download may wait for the next byte"
    )
    max_download_cache_bytes: int = Field(
        default=20 * 1024**3, ge=1,
        description="Bytes the download cache (<models>/.download_cache, files nodes fetch by URL or repo) may hold; "
        "least recently used entries not in use are removed to make room",
    )
    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        default="auto", description="Where models run; auto picks cuda, then mps, then cpu"
    )
    precision: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        default="auto", description="Model precision; auto is float16 on cuda/mps and float32 on cpu"
    )
    ram_cache_gb: float = Field(default=12.0, gt=0, description="Size of the model cache in RAM (GB)")
    vram_cache_gb: float = Field(default=20.0, gt=0, description="Size of the model cache on the GPU (GB)")
    flux_transformer_storage: Literal["auto", "bfloat16", "float8"] = Field(
        default="auto", description="How FLUX transformer weights are held: auto (bfloat16 where float16 was asked "
        "and the GPU has it, else the precision), bfloat16, or float8 (half the memory; layers cast up as they run)"
    )
    storage_backend: str = Field(default="sqlite", description="Name of the storage backend plugin to use")
    database_url: str | None = Field(
        default=None, repr=False,
        description="A postgresql:// URL: use that PostgreSQL database (the 'postgres' storage backend) instead of "
        "storage_backend; shared by every node of a deployment. Logged with its password masked",
    )
    database_retry_timeout_s: float = Field(
        default=10.0, gt=0,
        description="Most seconds a database operation keeps reconnecting (with backoff) when the database has gone "
        "away, before an API request answers 503",
    )
    # Events between nodes (invoke-postgres-events, docs/events.md): what a node holds for a slow database.
    max_event_relay_backlog: int = Field(
        default=10_000, ge=1,
        description="Events a node may hold waiting to be sent to the database; when full the oldest are dropped",
    )
    max_event_relay_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="Largest event sent to other nodes (bytes of JSON); larger: dropped"
    )
    max_event_relay_outbox_rows: int = Field(
        default=10_000, ge=1, description="Most large events kept in the database's event outbox (oldest pruned)"
    )
    event_relay_outbox_keep_s: float = Field(
        default=300.0, gt=0, description="Seconds a large event stays in the event outbox for other nodes to read"
    )
    max_batch_size: int = Field(default=10_000, ge=1, description="Most queue items one enqueued batch may expand to")
    ws_client_buffer: int = Field(
        default=10_000, ge=1, description="Events a websocket client may fall behind before it is disconnected"
    )
    ws_client_buffer_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1,
        description="Bytes of events a websocket client may fall behind before it is disconnected",
    )
    ws_max_message_bytes: int = Field(
        default=64 * 1024, ge=1, description="Largest message a websocket client may send (bytes)"
    )
    ws_close_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to wait for a too-slow websocket client to take its close frame before dropping it",
    )
    file_storage_backend: str = Field(default="local", description="Name of the image file-storage backend plugin")
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1, description="Largest image upload accepted (bytes)")
    # 6144x6144 (37.7 MP) holds a 24 MP camera photo and a 4x upscale of any SDXL size (longest side 1536);
    # decoding one costs about 1 s and 150 MB here, against 2.5 s and 260 MB (plus 5 s to store) at 8192x8192.
    max_image_pixels: int = Field(
        default=6144 * 6144,
        ge=1,
        description="Most pixels (width x height) an image may have: an upload, or one an image node makes",
    )
    max_image_page_cache_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description="Bytes of encoded image listing pages and records kept to answer repeated requests (0: none)",
    )
    max_json_depth: int = Field(
        default=64, ge=1, description="Deepest nesting of arrays and objects a JSON request body may have"
    )
    request_body_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for the next piece of a request body before answering 408"
    )
    processor_enabled: bool = Field(default=True, description="Run queue items (off: the server only stores them)")
    processor_workers: int = Field(default=1, ge=1, le=64, description="Queue items run at once")
    devices: list[str] = Field(
        default_factory=list,
        description="Devices to run items on, one processor (and model cache) each, e.g. cuda:0,cuda:1 or cpu,cpu "
        "(empty: one processor on `device`)",
    )
    worker_name: str | None = Field(
        default=None, description="This node's worker id in the queue (default: <hostname>-<pid>)"
    )
    lease_seconds: float = Field(
        default=30.0, ge=0.5, le=86_400,
        description="How long a claimed item stays with a worker that stops renewing its lease before it is retried",
    )
    max_attempts: int = Field(
        default=2, ge=1, le=100, description="Most claims of one queue item (the first run and its retries)"
    )
    affinity_max_wait_s: float = Field(
        default=30.0, ge=0,
        description="Longest an item waits behind items whose model a worker holds (model affinity) before it "
        "is taken first",
    )
    worker_poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle worker looks for items enqueued by another node"
    )
    memory_release_bytes: int = Field(
        default=8 * 1024 * 1024, ge=0,
        description="Once no item runs, freed memory is given back to the system if the server's RSS has grown "
        "this many bytes since it last was (glibc only; see invoke_host/memory.py); 0: never",
    )
    session_save_interval: float = Field(
        default=0.5, ge=0, description="Least seconds between saves of a running item's session (0: every node)"
    )
    max_results_page_size: int = Field(
        default=1_000, ge=1, description="Most node results one page of GET /queue/{q}/i/{id}/results may return"
    )
    max_held_graph_nodes: int = Field(
        default=200_000, ge=0,
        description="Most graph nodes (plus one per item) kept in memory from enqueue to claim, so an item this "
        "server enqueued and runs is not decoded and validated again; 0: always load from storage",
    )
    # Resource limits (docs/engine.md, "Limits"): what one request may make the server hold or do.
    max_graph_nodes: int = Field(default=10_000, ge=1, description="Most nodes a submitted graph may have")
    max_graph_edges: int = Field(default=50_000, ge=1, description="Most edges a submitted graph may have")
    max_collection_size: int = Field(
        default=10_000, ge=1,
        description="Most items of any collection: node inputs and outputs, what an iterate expands, a collect gathers",
    )
    max_string_length: int = Field(
        default=1_000_000, ge=1, description="Most characters of any string: a node input or output"
    )
    max_session_nodes: int = Field(
        default=100_000, ge=1,
        description="Most node instances one session may prepare and run (iterations counted, nested ones multiplied)",
    )
    max_session_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Most bytes of node results one session may hold (as stored JSON)"
    )
    max_batch_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1,
        description="Most bytes of session JSON one enqueued batch may store, all its queue items together",
    )
    output_cache_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0,
        description="Most bytes of memory the output cache holds, shared by every processor (its keys and outputs "
        "as Python objects); the least recently used go first; 0 turns the cache off",
    )
    output_cache_min_node_seconds: float = Field(
        default=0.001, ge=0,
        description="An output naming no image, tensor, conditioning or model is cached only if its node ran at "
        "least this long (seconds): quicker ones cost less to run again than to keep; 0 caches every output",
    )
    # The workflow library (docs/api.md, "Workflow library"): what saved workflows may hold.
    max_workflows: int = Field(default=10_000, ge=1, description="Most workflows the library may store")
    max_workflow_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1,
        description="Largest saved workflow: its graph and workflow JSON together (bytes)",
    )
    max_workflow_tags: int = Field(default=32, ge=0, description="Most tags one saved workflow may have")
    max_workflow_page_size: int = Field(
        default=500, ge=1, description="Most workflows one page of GET /api/v1/workflows may list"
    )

    _split = field_validator("cors_origins", "plugins_allow", "plugins_block", mode="before")(_split_commas)
    _split_devices = field_validator("devices", mode="before")(_split_commas)
    _split_hosts = field_validator("allowed_hosts", mode="before")(_split_commas)

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, devices: list[str]) -> list[str]:
        for device in devices:
            if not _DEVICE.fullmatch(device):
                raise ValueError(
                    f"devices (INVOKE_HOST_DEVICES / --devices): {device!r} is not a device; name each as cpu, mps, "
                    "cuda or cuda:<index>, separated by commas (e.g. cuda:0,cuda:1)"
                )
        return devices

    @model_validator(mode="after")
    def _check_cors(self) -> HostConfig:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "CORS: a wildcard origin ('*') cannot be combined with credentials; list the allowed origins instead"
            )
        return self

    @model_validator(mode="after")
    def _load_token(self) -> HostConfig:
        if self.token_file is not None:
            if self.token is not None:
                raise ValueError("give the access token once: token_file or token (INVOKE_HOST_TOKEN), not both")
            self.token = _read_token_file(self.token_file)
        if self.token is not None and not self.token.strip():
            raise ValueError("the access token must not be empty")
        if self.token is not None and not _TOKEN_CHARS.fullmatch(self.token):
            raise ValueError(
                "the access token may hold only letters, digits and !#$%&'*+-.^_`|~ (so it fits a header and a "
                "websocket subprotocol); make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry the access token."""
        return self.token is not None

    def check_bind(self) -> None:
        """Refuse to serve a non-loopback address without a token unless ``no_auth`` says so."""
        if not is_loopback_host(self.host) and self.token is None and not self.no_auth:
            raise ValueError(
                f"binding {self.host} exposes the server to the network: set an access token with --token-file or "
                "INVOKE_HOST_TOKEN, or pass --no-auth to serve without one"
            )
