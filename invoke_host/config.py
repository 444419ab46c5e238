"""The host's settings: flags override environment variables (``INVOKE_HOST_*``), which override defaults."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["HostConfig", "is_loopback_host"]


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


class HostConfig(BaseSettings):
    """Everything the host can be told at start-up."""

    model_config = SettingsConfigDict(env_prefix="INVOKE_HOST_", extra="forbid")

    root: Path = Field(default=Path("invoke-root"), description="Data root: database, images, models")
    host: str = Field(default="127.0.0.1", description="Address to bind")
    port: int = Field(default=9090, ge=0, le=65535)
    token: str | None = Field(default=None, description="Access token every request must present")
    no_auth: bool = Field(default=False, description="Serve a non-loopback address without a token")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    plugins_allow: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="If set, only these entry-point plugins (by name or distribution) load"
    )
    plugins_block: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Entry-point plugins (by name or distribution) never loaded"
    )
    disable_plugin_autoload: bool = Field(default=False, description="Load no entry-point plugins at all")
    log_level: str = "INFO"
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
    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        default="auto", description="Where models run; auto picks cuda, then mps, then cpu"
    )
    precision: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        default="auto", description="Model precision; auto is float16 on cuda/mps and float32 on cpu"
    )
    ram_cache_gb: float = Field(default=12.0, gt=0, description="Size of the model cache in RAM (GB)")
    vram_cache_gb: float = Field(default=20.0, gt=0, description="Size of the model cache on the GPU (GB)")
    storage_backend: str = Field(default="sqlite", description="Name of the storage backend plugin to use")
    max_batch_size: int = Field(default=10_000, ge=1, description="Most queue items one enqueued batch may expand to")
    ws_client_buffer: int = Field(
        default=10_000, ge=1, description="Events a websocket client may fall behind before it is disconnected"
    )
    file_storage_backend: str = Field(default="local", description="Name of the image file-storage backend plugin")
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1, description="Largest image upload accepted (bytes)")
    max_image_pixels: int = Field(
        default=8192 * 8192, ge=1, description="Most pixels (width x height) an uploaded image may have"
    )
    processor_enabled: bool = Field(default=True, description="Run queue items (off: the server only stores them)")
    processor_workers: int = Field(default=1, ge=1, le=64, description="Queue items run at once")
    session_save_interval: float = Field(
        default=0.5, ge=0, description="Least seconds between saves of a running item's session (0: every node)"
    )

    _split = field_validator("cors_origins", "plugins_allow", "plugins_block", mode="before")(_split_commas)

    @model_validator(mode="after")
    def _check_cors(self) -> HostConfig:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "CORS: a wildcard origin ('*') cannot be combined with credentials; list the allowed origins instead"
            )
        if self.token is not None and not self.token.strip():
            raise ValueError("the access token must not be empty")
        return self

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry the access token."""
        return self.token is not None

    def check_bind(self) -> None:
        """Refuse to serve a non-loopback address without a token unless ``no_auth`` says so."""
        if not is_loopback_host(self.host) and self.token is None and not self.no_auth:
            raise ValueError(
                f"binding {self.host} exposes the server to the network: set an access token with --token or "
                "INVOKE_HOST_TOKEN, or pass --no-auth to serve without one"
            )
