"""Media building blocks: capture backends, encoder, decoder, frame hand-off.

Backends (one module each, each with ``probe()``): :mod:`~wavry.media.synthetic`,
:mod:`~wavry.media.x11`, :mod:`~wavry.media.virtual`, :mod:`~wavry.media.wayland`
(xdg-desktop-portal ScreenCast → PipeWire → GStreamer).
"""

from wavry.media.decode import DecodedFrame, Decoder, snapshot
from wavry.media.encode import Codec, EncodedFrame, Encoder, EncoderError
from wavry.media.handoff import LatestFrameSlot, SlotClosed
from wavry.media.types import Capture, CapturedFrame, CaptureError, ProbeResult

__all__ = [
    "Capture",
    "CaptureError",
    "CapturedFrame",
    "Codec",
    "DecodedFrame",
    "Decoder",
    "EncodedFrame",
    "Encoder",
    "EncoderError",
    "LatestFrameSlot",
    "ProbeResult",
    "SlotClosed",
    "snapshot",
]
