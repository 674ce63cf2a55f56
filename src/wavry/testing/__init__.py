"""Test fixtures and bench helpers: headless desktops, private buses, fake portals.

Nothing in the product imports this package at run time; tests and ``wavry bench`` do. It ships
in the package so benchmarks run from an installed wavry can start the same headless sessions
the tests use.
"""
