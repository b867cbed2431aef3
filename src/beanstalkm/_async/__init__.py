"""The asyncio flavour's hand-written source: the one source of every flavoured class.

``python -m codegen`` derives ``beanstalkm._sync`` from these files (see
``codegen/unasync.py``); edit these, never the derived ones.
"""

__all__ = ["ASYNC"]

ASYNC = True
"""Marks the blocks that differ between the flavours: ``if ASYNC:`` (asyncio), ``else:`` (sync),
``if not ASYNC:`` (sync only). ``codegen/unasync.py`` resolves them; mypy takes it as always true."""
