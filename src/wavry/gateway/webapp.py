"""``/app``: the browser client, served from the gateway's own origin (docs/browser.md).

The same page `wavry host --web` serves (`wavry.web.assets`); here it signs in against this
gateway, lists the account's hosts and gets one host's browser rendezvous through signaling
(docs/spec/CONTROL_PLANE.md §6), then talks RIFT straight to the host (RIFT.md §11). The
gateway never sees the session: it only serves the page and introduces the peers.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from wavry.web.assets import content_security_policy, page_problem, read_asset

router = APIRouter(include_in_schema=False)

# WebTransport connections count as connect-src: the page reaches hosts on any address
_CSP = content_security_policy("'self' https: wss:")


@router.get("/app")
async def app_root() -> Response:
    return RedirectResponse("/app/", status_code=307)


@router.get("/app/{name:path}")
async def app_asset(name: str = "") -> Response:
    problem = page_problem()
    if problem is not None:
        return PlainTextResponse(f"{problem}\n", status_code=503)
    asset = read_asset(name)
    if asset is None:
        return PlainTextResponse("not found\n", status_code=404)
    return Response(
        asset.body,
        media_type=asset.content_type,
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": asset.cache,
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        },
    )
