"""The browser client's host side (RIFT.md §11, docs/browser.md).

`wavry host --web` serves, next to the RIFT UDP socket: HTTPS (the page), HTTP/3 with
WebTransport at ``/rift`` and a WebSocket at ``/rift-ws``, each carrying one RIFT datagram per
WebTransport datagram / WebSocket binary message into the host's ordinary `HostEndpoint`
(`wavry.web.endpoint`). `wavry.web.assets` is the built page, which the gateway serves at
``/app`` too; this package imports nothing heavy so the gateway can use it without aioquic.
"""
