"""`wavry bench peers`: glass-to-glass latency of wavry next to VNC, RDP, Selkies and aiortc.

A 60 Hz animation with a frame-counter marker runs on one Xvfb display (A); each system's
server captures A and its viewer shows the picture on a second Xvfb display (B); a grabber reads
B and decodes the marker back. Drawing and grabbing use one clock, so latency = time seen on B −
time drawn on A. See docs/benchmarks.md.
"""
