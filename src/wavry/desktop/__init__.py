"""`wavry desktop`: the Qt control surface — sign in, the computers to reach, sharing this one,
diagnostics and settings (docs/desktop.md).

It never touches frames: a stream opens in the SDL client window of a `wavry connect` child
process (:mod:`wavry.desktop.streaming`), and sharing runs the host runtime in-process on the
app's asyncio loop (qasync, :mod:`wavry.desktop.sharing`). Qt is imported only by the modules
that need it, and only when the app starts.
"""
