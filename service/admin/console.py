"""The operator console at /console: one static page over the admin API.

The page carries no data, so it loads without a key. The operator types an admin key; the
page keeps it in the tab's sessionStorage (never in the URL or localStorage) and sends it
as `Authorization: Bearer` to /api/v1, whose scopes decide what each panel shows. The page
must never render data as HTML: it writes only through textContent. Its inline script and
style are allowed by their hashes, so nothing else on the page can run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from aiohttp import web

PAGE = resources.files("service.admin").joinpath("console.html").read_bytes()


def _hashes(tag: str, page: str) -> str:
    """CSP sources allowing exactly the page's inline `<tag>` blocks, by their SHA-256."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page.replace("\r\n", "\n"), flags=re.DOTALL)
    if not blocks:
        raise RuntimeError(f"console.html has no inline <{tag}>")
    digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks)
    return " ".join(f"'sha256-{digest}'" for digest in digests)


def policy(page: bytes) -> str:
    """The Content-Security-Policy for `page`: its own script and style, calls to us only."""
    text = page.decode()
    return "; ".join((
        "default-src 'none'",
        f"script-src {_hashes('script', text)}",
        f"style-src {_hashes('style', text)}",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))  # fmt: skip


HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": policy(PAGE),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


async def serve(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, headers=HEADERS)


def add_routes(app: web.Application) -> None:
    """Serve the console page (it calls the admin API with the key the operator enters)."""
    app.router.add_get("/console", serve)
