"""``beanstalkm top``: a live full-screen view of every tube on every server (docs/cli.md, "top")."""

from __future__ import annotations

__all__ = ["top_command"]

import os
import select
import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from beanstalkm import BeanstalkmException, Client, JobStats, Message, ServerStats, TubeStats
from beanstalkm.cli._common import KICK_ALL, SHOW_ALL, Ctx, Unreachable, emit, pass_ctx, stats_dict
from beanstalkm.cli._jobs import all_tube_stats, outcomes_of, record_groups
from beanstalkm.cli._servers import Server

SORTS = ("tube", "ready", "buried", "failed", "put/s", "done/s", "age")
SERVER_FIELDS = (
    "current-jobs-ready",
    "current-jobs-reserved",
    "current-jobs-delayed",
    "current-jobs-buried",
    "current-connections",
    "current-workers",
    "current-waiting",
    "total-jobs",
    "uptime",
    "version",
)


@dataclass
class ServerSample:
    server: Server
    at: float
    stats: ServerStats | None = None
    tubes: dict[str, TubeStats] = field(default_factory=dict)
    ages: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Row:
    server: Server
    tube: TubeStats
    age: int | None
    put_rate: float | None
    done_rate: float | None
    buried_growing: bool
    failed: int | None = None  # the tube's failure records (None with --all: record tubes are rows)

    def as_json(self) -> dict[str, object]:
        t = self.tube
        return {
            "server": self.server.url,
            "tube": t.name,
            "ready": t.current_jobs_ready,
            "reserved": t.current_jobs_reserved,
            "delayed": t.current_jobs_delayed,
            "buried": t.current_jobs_buried,
            "failed": self.failed,
            "urgent": t.current_jobs_urgent,
            "waiting": t.current_waiting,
            "watching": t.current_watching,
            "paused": t.pause_time_left,
            "put_per_s": self.put_rate,
            "done_per_s": self.done_rate,
            "oldest_ready_age": self.age,
            "buried_growing": self.buried_growing,
        }

    def sort_key(self, sort: str) -> tuple[float | str, ...]:
        t = self.tube
        number = {
            "ready": t.current_jobs_ready,
            "buried": t.current_jobs_buried,
            "failed": self.failed or 0,
            "put/s": self.put_rate or 0.0,
            "done/s": self.done_rate or 0.0,
            "age": self.age or 0,
        }.get(sort)
        return (t.name, self.server.index) if number is None else (-number, t.name, self.server.index)


def _ready_ages(client: Client, tubes: list[TubeStats]) -> dict[str, int]:
    """Age of the head of each tube's ready queue: peek-ready, then stats-job, two pipelined writes."""
    names = [t.name for t in tubes if t.current_jobs_ready > 0]
    if not names:
        return {}
    pipeline = client.pipeline()
    for name in names:
        pipeline.use(name).peek_ready()
    heads = outcomes_of(pipeline)
    ids = {name: r.uid for name, r in zip(names, heads[1::2], strict=True) if isinstance(r, Message)}
    if not ids:
        return {}
    pipeline = client.pipeline()
    for job_id in ids.values():
        pipeline.stats_job(job_id)
    stats = outcomes_of(pipeline)
    return {name: s.age for name, s in zip(ids, stats, strict=True) if isinstance(s, JobStats)}


def sample_servers(ctx: Ctx) -> list[ServerSample]:
    """Every server's stats, tubes and ready ages; the run's clients are kept, one that went down retried."""
    out: list[ServerSample] = []
    for server in ctx.servers:
        sample = ServerSample(server, time.monotonic())
        try:
            ctx.down.pop(server.index, None)
            client = ctx.client(server)
            sample.stats = client.queue.stats()
            tubes = all_tube_stats(client)
            sample.tubes = {t.name: t for t in tubes}
            sample.ages = _ready_ages(client, tubes)
        except Unreachable as exc:
            sample.error = str(exc).split(": ", 1)[-1]
        except BeanstalkmException as exc:
            sample.error = str(exc)
            dropped = ctx.clients.pop(server.index, None)
            if dropped is not None:
                dropped.close()
        out.append(sample)
    return out


def _rate(now: int, before: int, seconds: float) -> float | None:
    return None if seconds <= 0 or now < before else (now - before) / seconds


def _gone(name: str) -> TubeStats:
    """The stats of a tube that is not there (only its failure records are): every count 0."""
    return TubeStats.from_yaml(
        f"name: {name}\n".encode() + b"".join(f"{key}: 0\n".encode() for key in TubeStats.KEYS if key != "name")
    )


def rows(previous: list[ServerSample] | None, current: list[ServerSample], show_all: bool = False) -> list[Row]:
    """The tubes of ``current``, with rates against ``previous`` (same servers, same order). The worker's
    failure-record tubes are counted in their tube's ``failed`` (a gone tube gets a row of zeros for
    them), unless ``show_all``."""
    out: list[Row] = []
    for k, sample in enumerate(current):
        before = previous[k] if previous is not None else None
        groups = record_groups(() if show_all else sample.tubes)
        tubes = [tube for name, tube in sample.tubes.items() if not groups.is_record(name)]
        tubes += [_gone(name) for name in groups.failed if name not in sample.tubes]
        for tube in tubes:
            old = before.tubes.get(tube.name) if before is not None else None
            seconds = sample.at - before.at if before is not None else 0.0
            out.append(
                Row(
                    sample.server,
                    tube,
                    sample.ages.get(tube.name),
                    None if old is None else _rate(tube.total_jobs, old.total_jobs, seconds),
                    None if old is None else _rate(tube.cmd_delete, old.cmd_delete, seconds),
                    old is not None and tube.current_jobs_buried > old.current_jobs_buried,
                    None if show_all else groups.failed.get(tube.name, 0),
                )
            )
    return out


def _fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}"


def _fmt_age(age: int | None) -> str:
    if age is None:
        return "-"
    if age < 120:
        return f"{age}s"
    if age < 7200:
        return f"{age // 60}m"
    return f"{age // 3600}h"


def _totals(table_rows: list[Row]) -> dict[str, float]:
    total: dict[str, float] = {}
    for row in table_rows:
        for key, value in row.as_json().items():
            if key in ("server", "tube", "oldest_ready_age", "buried_growing", "paused"):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total


@dataclass
class View:
    """What the screen shows besides the data: sort, selection, the last action's message."""

    sort: str = "tube"
    selected: int = 0
    message: str = ""


def frame(ctx: Ctx, samples: list[ServerSample], table_rows: list[Row], view: View | None) -> Group:
    """One screen: servers with their health, the tubes table with totals, and the keys."""
    servers = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    for title in ("server", "health", "ready", "reserved", "delayed", "buried", "workers", "conns"):
        servers.add_column(title, justify="left" if title in ("server", "health") else "right")
    for sample in samples:
        if sample.stats is None:
            servers.add_row(sample.server.url, Text(f"DOWN {sample.error or ''}", style="bold red"))
            continue
        s = sample.stats
        servers.add_row(
            sample.server.url,
            Text(f"up {s.version} {s.uptime}s", style="green"),
            str(s.current_jobs_ready),
            str(s.current_jobs_reserved),
            str(s.current_jobs_delayed),
            Text(str(s.current_jobs_buried), style="bold red" if s.current_jobs_buried else ""),
            str(s.current_workers),
            str(s.current_connections),
        )
    tubes = Table(box=None, header_style="bold reverse", pad_edge=False, expand=False)
    grouped = not table_rows or table_rows[0].failed is not None  # failed is None with --all
    counts = ["ready", "reserved", "delayed", "buried", *(["failed"] if grouped else []), "urgent", "waiting"]
    for title in ["tube", *(["server"] if ctx.several else []), *counts, "put/s", "done/s", "ready age", "paused"]:
        tubes.add_column(title, justify="left" if title in ("tube", "server") else "right")
    for k, row in enumerate(table_rows):
        t, values = row.tube, row.as_json()
        styles = {
            "buried": "bold white on red" if row.buried_growing else ("red" if t.current_jobs_buried else ""),
            "failed": "red" if row.failed else "",
        }
        tubes.add_row(
            t.name,
            *([str(row.server.index)] if ctx.several else []),
            *(Text(str(values[key]), style=styles.get(key, "")) for key in counts),
            _fmt_rate(row.put_rate),
            _fmt_rate(row.done_rate),
            _fmt_age(row.age),
            f"{t.pause_time_left}s" if t.pause_time_left else "",
            style="reverse" if view is not None and k == view.selected else None,
        )
    total = _totals(table_rows)
    tubes.add_section()
    tubes.add_row(
        f"TOTAL {len(table_rows)} tubes",
        *([""] if ctx.several else []),
        *(str(int(total.get(key, 0))) for key in counts),
        _fmt_rate(total.get("put_per_s")),
        _fmt_rate(total.get("done_per_s")),
        "",
        "",
        style="bold",
    )
    parts: list[Table | Text] = [
        Text(f"beanstalkm top  {time.strftime('%H:%M:%S')}  {len(samples)} server(s)", style="bold"),
        servers,
        Text(""),
        tubes,
    ]
    if view is not None:
        parts.append(
            Text(f"q quit  s sort ({view.sort})  up/down select  k kick  p pause/resume   {view.message}", style="dim")
        )
    return Group(*parts)


class KeyReader:
    """Single key presses from the terminal, in cbreak mode (no echo) inside ``with``; on no terminal,
    only the wait."""

    ARROWS: ClassVar[dict[str, str]] = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down"}

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if self.fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        """The next key within ``timeout`` seconds, or None."""
        if self.fd is None:
            time.sleep(max(timeout, 0.0))
            return None
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return None
        text = os.read(self.fd, 32).decode("utf-8", "ignore")
        return self.ARROWS.get(text, text[:1] if text else None)


def _act(ctx: Ctx, key: str, table_rows: list[Row], view: View, pause_seconds: int) -> None:
    if key == "s":
        view.sort = SORTS[(SORTS.index(view.sort) + 1) % len(SORTS)]
        view.message = f"sorted by {view.sort}"
        return
    if key in ("up", "down") and table_rows:
        view.selected = (view.selected + (1 if key == "down" else -1)) % len(table_rows)
        return
    if key not in ("k", "p") or not table_rows:
        return
    row = table_rows[min(view.selected, len(table_rows) - 1)]
    name = row.tube.name
    try:
        client = ctx.client(row.server)
        if key == "k":
            client.queue.use(name)
            view.message = f"kicked {client.queue.kick(KICK_ALL)} job(s) in {name!r}"
        elif row.tube.pause_time_left:
            client.queue.pause_tube(name, 0)
            view.message = f"resumed {name!r}"
        else:
            client.queue.pause_tube(name, pause_seconds)
            view.message = f"paused {name!r} for {pause_seconds}s"
    except BeanstalkmException as exc:
        view.message = f"{name!r} on {row.server.url}: {exc}"


def _sorted(table_rows: list[Row], sort: str) -> list[Row]:
    return sorted(table_rows, key=lambda row: row.sort_key(sort))


@click.command("top")
@click.option("--once", is_flag=True, help="print one frame and exit (with --json: one JSON document)")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    help="seconds between refreshes (and between --once's two samples)",
)
@click.option(
    "--pause-seconds",
    type=click.IntRange(1, 2**32 - 1),
    default=60,
    show_default=True,
    help="how long the p key pauses a tube",
)
@click.option("--sort", type=click.Choice(SORTS), default="tube", show_default=True)
@SHOW_ALL
@pass_ctx
def top_command(ctx: Ctx, once: bool, interval: float, pause_seconds: int, sort: str, show_all: bool) -> None:
    """A live view of every tube on every server (q quit, s sort, k kick, p pause)."""
    if once:
        first = sample_servers(ctx)
        if all(s.stats is None for s in first):
            raise Unreachable("no server reachable: " + ", ".join(s.url for s in ctx.servers))
        time.sleep(interval)
        current = sample_servers(ctx)
        table_rows = _sorted(rows(first, current, show_all), sort)
        ctx.partial = any(s.stats is None for s in current)
        for sample in current:  # a partial frame (exit 1): each server missing from it named, as elsewhere
            if sample.stats is None:
                click.echo(f"beanstalkm: server {sample.server.url} unreachable: {sample.error}", err=True)
        if ctx.json_output:
            emit(
                {
                    "time": time.time(),
                    "interval": interval,
                    "servers": [
                        {
                            "server": s.server.url,
                            "up": s.stats is not None,
                            "error": s.error,
                            "stats": None
                            if s.stats is None
                            else {k: v for k, v in stats_dict(s.stats).items() if k in SERVER_FIELDS},
                        }
                        for s in current
                    ],
                    "tubes": [row.as_json() for row in table_rows],
                    "total": _totals(table_rows),
                }
            )
        else:
            ctx.console().print(frame(ctx, current, table_rows, None))
        return
    view = View(sort=sort)
    previous = sample_servers(ctx)
    table_rows = _sorted(rows(None, previous, show_all), view.sort)
    with KeyReader() as keys, Live(frame(ctx, previous, table_rows, view), screen=True, auto_refresh=False) as live:
        due = time.monotonic() + interval
        while True:
            key = keys.read(due - time.monotonic())
            if key == "q":
                return
            if key is not None:
                _act(ctx, key, table_rows, view, pause_seconds)
                table_rows = _sorted(table_rows, view.sort)
                live.update(frame(ctx, previous, table_rows, view), refresh=True)
                continue
            current = sample_servers(ctx)
            table_rows = _sorted(rows(previous, current, show_all), view.sort)
            if table_rows:
                view.selected = min(view.selected, len(table_rows) - 1)
            previous = current
            live.update(frame(ctx, current, table_rows, view), refresh=True)
            due = max(due + interval, time.monotonic())
