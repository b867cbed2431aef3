"""The sans-IO core: everything the protocol needs that does no I/O.

``base`` (what both flavours of connection share, and the protocol the generated
queues call), ``session`` (the connection's state and every conversation as a
generator that yields bytes to write or how long it may wait), ``batches``
(``put_many``, ``reserve_many``, ``reserve(drop=True)``, ``delete_many`` as such
conversations, and building messages). The drivers in ``beanstalkm._async``
(and the sync flavour derived from them) only pump these through a transport.
"""
