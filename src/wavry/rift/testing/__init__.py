"""Test helpers for the sans-I/O core: `loopback.Loopback` (a scripted in-memory network
between a ClientSession and a HostEndpoint) and `linksim.simulate` (a deterministic bottleneck
driving the real feedback path and a congestion controller). The product never imports them;
tests and benchmarks do."""
