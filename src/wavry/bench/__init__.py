"""Benchmarks (`wavry bench ...`)."""
