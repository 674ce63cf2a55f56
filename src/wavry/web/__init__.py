"""The browser client's host side (RIFT.md §11, docs/browser.md).

`wavry host --web` serves, next to the RIFT UDP socket: HTTPS (the page), HTTP/3 with
WebTransport at ``/rift`` and a WebSocket at ``/rift-ws``, each carrying one RIFT datagram per
WebTransport datagram / WebSocket binary message into the host's ordinary `HostEndpoint`.
"""

from wavry.web.endpoint import WebEndpoint, WebError

__all__ = ["WebEndpoint", "WebError"]
