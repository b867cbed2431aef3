"""The transport seam: the only modules that call socket or asyncio I/O.

``streams.StreamTransport`` (asyncio) serves the hand-written asyncio flavour, ``sockets.SocketTransport``
(a blocking socket) the sync flavour derived from it: the same verbs with the same meaning, so the derived
code names no socket or asyncio API (the verbs: docs/architecture.md).
"""
