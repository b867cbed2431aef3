"""The connection's state, I/O-free: the tube in use and the watch list.

It decides which extra commands must go out with a request (the ``use`` that
puts the caller's tube back in force, the commands that restore the watch
list after a reconnect) and records what each successful command changed.
"""

from __future__ import annotations

from typing import Any

from beanstalkm._generated import commands as _c
from beanstalkm._wire import Request

DEFAULT_SERVER_TUBE = "default"


class Session:
    """What the caller chose (``using``, ``watching``) and what the server has now."""

    __slots__ = ("server_using", "using", "watching")

    def __init__(self) -> None:
        self.using = DEFAULT_SERVER_TUBE
        self.server_using = DEFAULT_SERVER_TUBE
        self.watching: list[str] = [DEFAULT_SERVER_TUBE]

    def prelude(self, request: Request[Any], tube: str | None = None) -> list[Request[Any]]:
        """Commands to send just before ``request``.

        ``tube`` routes a ``put`` to a tube without changing the caller's
        choice; otherwise a command acting on the used tube first restores
        the caller's tube if another one is in force.
        """
        if tube is not None:
            tube = _c.TUBE_RULE.check("tube", tube)
            if tube != self.server_using:
                route = _c.use(tube)
                route.effect = "route"
                return [route]
            return []
        if request.uses_tube and self.server_using != self.using:
            return [_c.use(self.using)]
        return []

    def applied(self, request: Request[Any], result: object) -> None:
        """Record the effect of a command the server carried out."""
        effect = request.effect
        if effect is None:
            return
        if effect == "use":
            self.using = self.server_using = str(result)
        elif effect == "route":
            self.server_using = str(result)
        elif effect == "watch" and request.tube is not None:
            if request.tube not in self.watching:
                self.watching.append(request.tube)
        elif effect == "ignore" and request.tube is not None:
            if request.tube in self.watching:
                self.watching.remove(request.tube)

    def connected(self) -> list[Request[Any]]:
        """A new connection starts on the server's defaults: the commands that restore the caller's watch list."""
        self.server_using = DEFAULT_SERVER_TUBE
        restore: list[Request[Any]] = [_c.watch(t) for t in self.watching if t != DEFAULT_SERVER_TUBE]
        if DEFAULT_SERVER_TUBE not in self.watching and self.watching:
            restore.append(_c.ignore(DEFAULT_SERVER_TUBE))
        for request in restore:
            request.effect = None  # already recorded
        return restore
