"""Host and client runtimes behind the `wavry` commands."""
