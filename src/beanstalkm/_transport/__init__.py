"""The transport seam: the only modules that call socket or asyncio I/O.

``streams.StreamTransport`` (asyncio streams) serves the hand-written asyncio
flavour; ``sockets.SocketTransport`` (a blocking socket) serves the sync
flavour derived from it. Both offer the same verbs with the same meaning, so
the derived code names no socket or asyncio API: ``open``, ``send_command``
(one command, with nothing buffered before it), ``write`` (a batch, or a later
write of a conversation, reading replies meanwhile where it must), ``receive``,
``interrupt`` (cut short a wait from elsewhere), ``quit``, ``abort`` and ``ended``
(the server closed the stream); ``new_lock`` (asyncio.Lock / threading.RLock); and
``receive_any`` (wait on several transports at once: one ``poll``, or racing stream reads).
``open`` takes an ``ssl.SSLContext`` for TLS.
"""
