"""``/api/v1/app``: what is running."""

import invoke_sdk
import msgspec
from litestar import get

import invoke_host

__all__ = ["AppVersion", "get_version"]


class AppVersion(msgspec.Struct):
    version: str
    sdk_version: str


@get("/app/version", tags=["app"], summary="Server and SDK versions", sync_to_thread=False)
def get_version() -> AppVersion:
    return AppVersion(version=invoke_host.__version__, sdk_version=invoke_sdk.__version__)
