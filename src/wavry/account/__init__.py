"""Accounts on a Wavry gateway: the API client and what this device remembers of its sign-in."""
