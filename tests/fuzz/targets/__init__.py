"""Coverage-guided fuzz targets (atheris): one module per decoder; see tests/fuzz/run.py."""

TARGETS = (
    "rift_framing",
    "rift_handshake",
    "host_session",
    "client_session",
    "fec",
    "relay_wire",
    "lease",
    "stun",
    "signaling",
    "files",
    "config",
)
