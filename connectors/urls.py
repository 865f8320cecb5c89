"""URL confinement: every request a connection sends stays under the connection's base URL.

A connection's credentials (bearer tokens, secret headers, a webhook's signing secret) are
meant for one place: its ``base_url`` (for ``webhook_out``, its target URL). Paths are built
from author text and values (request text, AI output, another system's ``Link: next``), so
:class:`~connectors.transport.HttpTransport` calls :func:`check_confined` on the final URL of
every request before a byte is sent. A request leaves the base URL when it has

- another scheme, host, port or user-info (an absolute URL, ``//other-host/…``);
- a path outside the base path at a segment boundary (``/api/v2`` does not contain
  ``/api/v20``);
- a dot-segment: ``.`` or ``..``, also percent-encoded (``%2e%2e``) or hidden in one
  segment behind an encoded slash (``..%2F..%2Fadmin``), because servers and proxies that
  decode before resolving would climb out of the base path with it.

:func:`encode_segment` is how a value becomes (part of) one path segment: everything but
unreserved characters is percent-encoded, and a value made only of dots is encoded too, so a
value can never add, remove or climb segments.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import httpx

__all__ = ["UrlOutsideBase", "check_confined", "encode_segment"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SEGMENT_SEPARATORS = re.compile(r"[/\\]")


class UrlOutsideBase(ValueError):
    """The URL a request would go to is not under the connection's base URL."""


def encode_segment(value: object) -> str:
    """``value`` as text that stays inside one path segment (``/ ? # % ..`` all encoded)."""
    text = quote(str(value), safe="", errors="replace")  # a lone surrogate becomes %3F
    if text and text.strip(".") == "":  # "." and ".." are unreserved, yet climb segments
        text = text.replace(".", "%2E")
    return text


def _origin(url: httpx.URL) -> tuple[str, str, int | None, str]:
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    return url.scheme, url.host.lower(), port, url.userinfo.decode("ascii", "replace")


def _dot_segment(raw_segment: str) -> bool:
    decoded = unquote(raw_segment)
    return any(piece in (".", "..") for piece in _SEGMENT_SEPARATORS.split(decoded))


def check_confined(base: httpx.URL, url: httpx.URL) -> None:
    """Raise :class:`UrlOutsideBase` unless ``url`` is ``base`` or below it.

    The message names what differs, never the full URL (it may carry a secret).
    """
    if _origin(url) != _origin(base):
        raise UrlOutsideBase(
            f"URL leaves the connection's base_url: {url.scheme}://{url.host}"
            f"{'' if url.port is None else f':{url.port}'} is not "
            f"{base.scheme}://{base.host}{'' if base.port is None else f':{base.port}'}"
        )
    path = url.raw_path.decode("ascii", "replace").split("?", 1)[0]
    if any(_dot_segment(segment) for segment in path.split("/")):
        raise UrlOutsideBase(
            "URL leaves the connection's base_url: its path has a '.' or '..' segment"
        )
    prefix = base.raw_path.decode("ascii", "replace").split("?", 1)[0].rstrip("/")
    if not (path == prefix or path.startswith(f"{prefix}/")):
        raise UrlOutsideBase(
            f"URL leaves the connection's base_url: path is not under {prefix or '/'}"
        )
