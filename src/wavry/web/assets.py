"""The built page (web/ → src/wavry/web/static/, made by scripts/setup.sh) and how it is served.

Shared by `wavry host --web` and the gateway's ``/app`` route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ENTRY = "index.html"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}


class PageMissing(Exception):
    """The browser client was not built."""


def page_problem(directory: Path = STATIC_DIR) -> str | None:
    """Why the page cannot be served (None: it can)."""
    if not (directory / ENTRY).is_file() or not (directory / "app.js").is_file():
        return (
            f"the browser client is not in this installation ({directory} is missing): in a "
            "source checkout run scripts/setup.sh (it builds web/ with Node.js and npm); release "
            "wheels carry it"
        )
    return None


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    cache: str


def content_security_policy(connect_src: str = "'self'") -> str:
    """The page loads nothing from elsewhere; it talks RIFT to ``connect_src``."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src {connect_src}; worker-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def read_asset(path: str, directory: Path = STATIC_DIR) -> Asset | None:
    """The file for a request path ("/" is the page), or None (never outside ``directory``)."""
    name = path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or ENTRY
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    file = directory / name
    suffix = file.suffix
    if suffix not in _TYPES or not file.is_file():
        return None
    cache = "no-cache" if name == ENTRY else "max-age=300"
    return Asset(file.read_bytes(), _TYPES[suffix], cache)
