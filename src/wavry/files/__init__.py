"""File transfer over RIFT sessions."""
