"""asyncio adapters for the RIFT core."""
