"""The guards in front of every route, as plain ASGI middleware, one module per threat.

They run before any handler, plugin-contributed ones included, so a route cannot forget them.
Outermost first: the Host allow-list (DNS rebinding), the access token, the cross-site check,
then the limits on request bodies (stall timeout, JSON nesting depth). Security headers are added
to every answer by a ``before_send`` hook; log redaction keeps secrets out of every log handler.
"""

from invoke_host.security.access_token import BEARER_SUBPROTOCOL_PREFIX, PUBLIC_PATHS, access_token_middleware
from invoke_host.security.body_timeout import RequestBodyTimeoutError, request_body_timeout_middleware
from invoke_host.security.cross_site import cross_site_middleware
from invoke_host.security.headers import security_headers_hook
from invoke_host.security.host_check import HostAllowList, host_check_middleware
from invoke_host.security.json_depth import JsonTooDeepError, json_depth_middleware, recursion_error_handler
from invoke_host.security.log_redaction import install_log_redaction, redact

__all__ = [
    "BEARER_SUBPROTOCOL_PREFIX",
    "PUBLIC_PATHS",
    "HostAllowList",
    "JsonTooDeepError",
    "RequestBodyTimeoutError",
    "access_token_middleware",
    "cross_site_middleware",
    "host_check_middleware",
    "install_log_redaction",
    "json_depth_middleware",
    "recursion_error_handler",
    "redact",
    "request_body_timeout_middleware",
    "security_headers_hook",
]
