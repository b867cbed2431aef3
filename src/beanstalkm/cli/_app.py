"""The ``beanstalkm`` command: global options, every subcommand, and the mapping of failures to exit
codes (docs/cli.md, "Exit codes and errors")."""

from __future__ import annotations

__all__ = ["cli", "run"]

import base64
import binascii
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from typing import IO, NoReturn, TypeGuard

import click
from rich.table import Table

from beanstalkm import (
    DEFAULT_DELAY,
    DEFAULT_PRIORITY,
    DEFAULT_TTR,
    BatchFailed,
    BeanstalkmException,
    Client,
    InvalidArgument,
    JobStats,
    Message,
    NotFound,
    SocketError,
)
from beanstalkm.cli._bulk import export_lines, flush_ready, flush_walk, tube_rows
from beanstalkm.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    JOB_ID,
    KICK_ALL,
    SHOW_ALL,
    TUBE,
    Ctx,
    Failure,
    JobRef,
    PlainTable,
    Unreachable,
    emit,
    json_text,
    pass_ctx,
    progress,
    stats_dict,
)
from beanstalkm.cli._jobs import (
    STATES,
    Claimed,
    JobRecord,
    claim,
    delete_ids,
    inspect,
    job_record,
    jobs_in,
    put_jobs,
    restore,
    snapshot,
    stale_records,
    tube_count,
    walk_bounds,
)
from beanstalkm.cli._servers import Server, connect, parse_servers
from beanstalkm.cli._wire import BATCH

STATES_MOVED = ("ready", "delayed", "buried")
SUMMED = ("current-", "cmd-", "total-", "job-timeouts", "failed")
TUBE_COLUMNS = (
    ("ready", "current-jobs-ready"),
    ("reserved", "current-jobs-reserved"),
    ("delayed", "current-jobs-delayed"),
    ("buried", "current-jobs-buried"),
    ("failed", "failed"),
    ("urgent", "current-jobs-urgent"),
    ("waiting", "current-waiting"),
    ("watching", "current-watching"),
    ("using", "current-using"),
    ("total", "total-jobs"),
    ("deleted", "cmd-delete"),
    ("paused", "pause-time-left"),
)
STATE = click.Choice(STATES)
U32 = click.IntRange(0, 2**32 - 1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-s",
    "--server",
    "servers",
    multiple=True,
    metavar="URL",
    help="beanstalk://host[:port] or unix:///path (repeatable; default $BEANSTALKD_URL, else "
    "beanstalk://127.0.0.1:11300)",
)
@click.option("--json", "json_output", is_flag=True, help="machine output: one JSON document (NDJSON for streams)")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="seconds to wait for a server",
)
@click.option("--debug", is_flag=True, help="show the traceback of a failure")
@click.version_option(package_name="beanstalkm")
@click.pass_context
def cli(context: click.Context, servers: tuple[str, ...], json_output: bool, timeout: float, debug: bool) -> None:
    """Inspect, fix and move beanstalkd jobs without disturbing them.

    Job ids: N with one server; with several, I:N (the I-th -s server, from 1) or URL#N.
    Exit codes: 0 ok, 1 failed, 2 usage, 3 no server reachable.
    """
    context.obj = Ctx(parse_servers(servers), json_output, timeout, debug, named=bool(servers))
    context.call_on_close(context.obj.close)


@cli.result_callback()
@pass_ctx
def _exit_code(ctx: Ctx, /, result: object, **_: object) -> object:
    """A command's own exit code, else 1 if some of several servers were down (a partial result)."""
    return EXIT_FAILED if result is None and ctx.partial else result


# -- stats ---------------------------------------------------------------------------------------


def _totals(rows: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """The sums of the counters (``SUMMED``) over ``rows``: whole numbers only, never a flag. Rows with
    the same keys (every tube's, from one server version) are summed a column at a time."""
    total: dict[str, int] = {}
    columns: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
    for row in rows:
        columns.setdefault(tuple(row), []).append(tuple(row.values()))
    for keys, values in columns.items():
        for key, column in zip(keys, zip(*values, strict=True), strict=True):
            if not key.startswith(SUMMED):
                continue
            numbers = (
                column if _whole(column) else [v for v in column if isinstance(v, int) and not isinstance(v, bool)]
            )
            if numbers:
                total[key] = total.get(key, 0) + sum(numbers)
    return total


def _whole(column: tuple[object, ...]) -> TypeGuard[tuple[int, ...]]:
    """Whether every value is a plain ``int`` (no flag, no text), checked at C speed."""
    return set(map(type, column)) == {int}


def _key_table(ctx: Ctx, columns: Sequence[tuple[Server, dict[str, object]]], total: dict[str, int] | None) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("field")
    for server, _ in columns:
        table.add_column(server.url if ctx.several else "value", justify="right")
    if total is not None:
        table.add_column("total", justify="right")
    for key in columns[0][1]:
        cells = [str(values.get(key, "")) for _, values in columns]
        if total is not None:
            cells.append(str(total.get(key, "")))
        table.add_row(key, *cells)
    return table


@cli.command("stats")
@click.argument("field", required=False)
@pass_ctx
def stats_command(ctx: Ctx, field: str | None) -> None:
    """Server stats (every server, with totals), or one FIELD of them."""
    rows = [(server, stats_dict(client.queue.stats())) for server, client in ctx.reachable()]
    total = _totals(values for _, values in rows) if ctx.several else None
    if field is not None:
        if field not in rows[0][1]:
            raise click.BadParameter(f"no stats field {field!r} (e.g. current-jobs-ready)", param_hint="FIELD")
        summed = total.get(field) if total is not None else None
        if ctx.json_output:
            emit(
                {
                    "field": field,
                    "servers": [{"server": s.url, "value": values[field]} for s, values in rows],
                    "total": summed,
                }
            )
        elif not ctx.several:
            click.echo(rows[0][1][field])
        else:
            for server, values in rows:
                click.echo(f"{server.url}\t{values[field]}")
            if summed is not None:
                click.echo(f"total\t{summed}")
        return
    if ctx.json_output:
        emit({"servers": [{"server": s.url, "stats": values} for s, values in rows], "total": total})
    else:
        ctx.console().print(_key_table(ctx, rows, total))


# -- tubes ---------------------------------------------------------------------------------------


def _tube_table(ctx: Ctx, rows: Sequence[tuple[Server, dict[str, int | str]]], total: dict[str, int]) -> PlainTable:
    columns = [(title, key) for title, key in TUBE_COLUMNS if key != "failed" or "failed" in total]
    table = PlainTable(
        [("tube", False), *([("server", False)] if ctx.several else []), *((t, True) for t, _ in columns)]
    )
    for server, stats in rows:
        cells: list[str | tuple[str, str | None]] = [str(stats.get(key, "")) for _, key in columns]
        for k, (_, key) in enumerate(columns):
            if key in ("current-jobs-buried", "failed") and stats.get(key):
                cells[k] = (str(stats[key]), "bold red")
        table.add_row(str(stats["name"]), *([server.url] if ctx.several else []), *cells)
    table.add_row(
        f"TOTAL ({len(rows)})",
        *([f"{len(ctx.servers) - len(ctx.down)} up"] if ctx.several else []),
        *[str(total.get(key, "")) for _, key in columns],
    )
    return table


@cli.command("tubes")
@SHOW_ALL
@pass_ctx
def tubes_command(ctx: Ctx, show_all: bool) -> None:
    """Every tube's counts on every server, in one table (stats-tube pipelined).

    The worker's failure-record tubes (TUBE.failed.ID, one per buried job) are counted in their tube's
    `failed` column instead of listed, unless --all.
    """
    listed: list[tuple[Server, dict[str, int | str], str]] = []
    for server, client in ctx.reachable():
        found, entries = tube_rows(client, grouped=not show_all, server=server.url if ctx.json_output else None)
        listed += [(server, row, entry) for row, entry in zip(found, entries or [""] * len(found), strict=True)]
    listed.sort(key=lambda item: (str(item[1]["name"]), item[0].index))
    rows = [(server, row) for server, row, _ in listed]
    total = _totals(row for _, row in rows)
    if not show_all:
        total.setdefault("failed", 0)
    if ctx.json_output:  # one document; each tube's entry written as its reply came (tube_entry: json.dumps's)
        servers = [{"server": s.url, "up": s.index not in ctx.down} for s in ctx.servers]
        sys.stdout.write(
            '{"tubes":['
            + ",".join(entry for _, _, entry in listed)
            + f'],"total":{json_text(total)},"servers":{json_text(servers)}}}\n'
        )
    else:
        ctx.console().print(_tube_table(ctx, rows, total))


@cli.command("stats-tube")
@click.argument("tube", type=TUBE)
@pass_ctx
def stats_tube_command(ctx: Ctx, tube: str) -> None:
    """One tube's stats on every server."""
    rows = [(server, stats) for server, client in ctx.reachable() if (stats := tube_count(client, tube)) is not None]
    if not rows:
        raise Failure(f"tube {tube!r} not found on " + ", ".join(s.url for s in ctx.servers))
    values = [(server, stats_dict(stats)) for server, stats in rows]
    total = _totals(v for _, v in values) if ctx.several else None
    if ctx.json_output:
        emit({"tube": tube, "servers": [{"server": s.url, "stats": v} for s, v in values], "total": total})
    else:
        ctx.console().print(_key_table(ctx, values, total))


# -- one job -------------------------------------------------------------------------------------


def _job_stats(ctx: Ctx, ref: JobRef) -> tuple[Server, Client, JobStats]:
    server = ctx.server_of(ref)
    client = ctx.client(server)
    try:
        return server, client, client.queue.stats_job(ref.id)
    except NotFound:
        raise Failure(f"job {ctx.ref(server, ref.id)} not found on {server.url}") from None


def _print_record(ctx: Ctx, server: Server, record: dict[str, object]) -> None:
    if ctx.json_output:
        emit({"server": server.url, "ref": ctx.ref(server, int(str(record["id"]))), **record})
        return
    for key, value in record.items():
        if key not in ("body", "data", "data_base64"):
            click.echo(f"{key}: {value}")
    if "data" in record or "data_base64" in record:
        body = record.get("body") if record.get("envelope") else record.get("data", record.get("data_base64"))
        click.echo(f"body: {body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)}")


@cli.command("stats-job")
@click.argument("ref", metavar="ID", type=JOB_ID)
@pass_ctx
def stats_job_command(ctx: Ctx, ref: JobRef) -> None:
    """One job's stats."""
    server, _, stats = _job_stats(ctx, ref)
    if ctx.json_output:
        emit({"server": server.url, "ref": ctx.ref(server, stats.id), "stats": stats_dict(stats)})
    else:
        ctx.console().print(_key_table(ctx, [(server, stats_dict(stats))], None))


@cli.command("peek")
@click.argument("target", metavar="TUBE|ID")
@click.option("--ready", "state", flag_value="ready", help="the next ready job of TUBE")
@click.option("--delayed", "state", flag_value="delayed", help="the delayed job of TUBE due first")
@click.option("--buried", "state", flag_value="buried", help="the oldest buried job of TUBE")
@pass_ctx
def peek_command(ctx: Ctx, target: str, state: str | None) -> None:
    """Show a job without reserving it: `peek TUBE --ready|--delayed|--buried` or `peek ID`."""
    if state is None:
        ref = JOB_ID.convert(target, None, click.get_current_context())
        server, client, stats = _job_stats(ctx, ref)
        message = client.queue.peek(ref.id)
        if message is None:
            raise Failure(f"job {ctx.ref(server, ref.id)} not found on {server.url}")
        return _print_record(ctx, server, job_record(stats, message, body=True, data=True))
    tube = TUBE.convert(target, None, click.get_current_context())
    shown = 0
    found: list[dict[str, object]] = []  # with --json and several servers: one document of them all
    several = ctx.json_output and len(ctx.servers) > 1
    for server, client in ctx.reachable():
        client.queue.use(tube)
        peeked = {"ready": client.queue.peek_ready, "delayed": client.queue.peek_delayed}.get(
            state, client.queue.peek_buried
        )()
        if peeked is None:
            continue
        try:
            stats = client.queue.stats_job(peeked.uid)
        except NotFound:
            continue
        shown += 1
        record = job_record(stats, peeked, body=True, data=True)
        if several:
            found.append({"server": server.url, "ref": ctx.ref(server, stats.id), **record})
            continue
        if shown > 1 and not ctx.json_output:
            click.echo()
        _print_record(ctx, server, record)
    if several and shown:
        emit({"tube": tube, "state": state, "jobs": found})
    if not shown:
        raise Failure(f"no {state} job in tube {tube!r} on " + ", ".join(s.url for s in ctx.servers))
    return None


# -- ls ------------------------------------------------------------------------------------------


@cli.command("ls")
@click.argument("tube", type=TUBE)
@click.option("--state", "states", multiple=True, type=STATE, help="only jobs in this state (repeatable)")
@click.option("--min-priority", type=U32, default=None)
@click.option("--max-priority", type=U32, default=None)
@click.option("--min-age", type=click.IntRange(0), default=None, help="seconds since put, at least")
@click.option("--max-age", type=click.IntRange(0), default=None, help="seconds since put, at most")
@click.option("--body", "body_re", default=None, metavar="REGEX", help="only jobs whose body text matches")
@click.option("--limit", type=click.IntRange(1), default=None, help="list at most this many jobs")
@pass_ctx
def ls_command(
    ctx: Ctx,
    tube: str,
    states: tuple[str, ...],
    min_priority: int | None,
    max_priority: int | None,
    min_age: int | None,
    max_age: int | None,
    body_re: str | None,
    limit: int | None,
) -> None:
    """List TUBE's jobs without reserving any (stats-job and peek by id; see docs/cli.md)."""
    try:
        pattern = None if body_re is None else re.compile(body_re)
    except re.error as exc:
        raise click.BadParameter(f"bad regular expression {body_re!r}: {exc}", param_hint="--body") from None

    def keep(stats: JobStats) -> bool:
        return (
            (not states or stats.state in states)
            and (min_priority is None or stats.pri >= min_priority)
            and (max_priority is None or stats.pri <= max_priority)
            and (min_age is None or stats.age >= min_age)
            and (max_age is None or stats.age <= max_age)
        )

    listed: list[tuple[Server, dict[str, object], Message]] = []
    for server, client in ctx.reachable():
        for stats, message in inspect(client, snapshot(client, tube)):
            if not keep(stats) or (pattern is not None and not pattern.search(_body_text(message))):
                continue
            listed.append((server, job_record(stats, message, body=True, data=False), message))
            if limit is not None and len(listed) >= limit:
                break
    listed = sorted(listed, key=lambda item: (item[0].index, int(str(item[1]["id"]))))[:limit]
    if ctx.json_output:
        for server, record, _ in listed:
            emit({"server": server.url, "ref": ctx.ref(server, int(str(record["id"]))), **record})
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("id", "state", "pri", "ttr", "delay", "age", "reserves", "body"):
        table.add_column(title, justify="left" if title in ("state", "body") else "right")
    for server, record, message in listed:
        cells = [str(record[key]) for key in ("state", "priority", "ttr", "delay", "age", "reserves")]
        body = _body_text(message)
        table.add_row(ctx.ref(server, int(str(record["id"]))), *cells, body if len(body) <= 60 else body[:57] + "...")
    ctx.console().print(table)
    click.echo(f"{len(listed)} job(s)")


def _body_text(message: Message) -> str:
    body = message.body
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return json.dumps(body, ensure_ascii=False, default=repr)


# -- put, import ---------------------------------------------------------------------------------


def _json_body(text: str, where: str | None) -> object:
    """``text`` as JSON; if it is not JSON, the text itself (``where`` None) or a usage error naming ``where``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        if where is None:
            return text
        raise click.BadParameter(f"{where} is not JSON ({exc}); use --raw for a plain body") from None


def _spread(ctx: Ctx, count: int) -> list[tuple[Server, Client, list[int]]]:
    """Items 0..count-1 dealt out to the reachable servers in turn: (server, client, item indexes)."""
    up = list(ctx.reachable())
    return [(server, client, list(range(k, count, len(up)))) for k, (server, client) in enumerate(up)]


@cli.command("put")
@click.argument("tube", type=TUBE)
@click.argument("body", required=False)
@click.option("--priority", type=U32, default=DEFAULT_PRIORITY, show_default=True, help="0 (most urgent) to 2**32-1")
@click.option("--delay", type=U32, default=DEFAULT_DELAY, show_default=True, help="seconds before the job is ready")
@click.option("--ttr", type=U32, default=DEFAULT_TTR, show_default=True, help="seconds a worker may hold the job")
@click.option("--raw", is_flag=True, help="send BODY (or each stdin line) as is, not in the JSON envelope")
@pass_ctx
def put_command(ctx: Ctx, tube: str, body: str | None, priority: int, delay: int, ttr: int, raw: bool) -> None:
    """Put BODY (JSON, else text) into TUBE; without BODY, one job per stdin line (NDJSON)."""
    if body is not None:
        items: list[object] = [body.encode() if raw else _json_body(body, None)]
    else:
        lines = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
        items = [line.encode() if raw else _json_body(line, f"stdin line {n}") for n, line in enumerate(lines, start=1)]
    done: list[tuple[Server, int, int]] = []  # (server, item index, id)
    failed: list[tuple[int, BaseException]] = []  # (item index, its error): not stored
    try:
        with progress(ctx, f"put {tube}", len(items)) as bar:
            for server, client, indexes in _spread(ctx, len(items)):
                for start in range(0, len(indexes), BATCH):
                    chunk = indexes[start : start + BATCH]
                    if raw:
                        jobs = [JobRecord(_as_bytes(items[i]), priority, ttr, delay) for i in chunk]
                        outcomes: list[object] = list(put_jobs(client, tube, jobs))
                    else:
                        try:
                            outcomes = list(client.put_many([items[i] for i in chunk], tube, priority, delay, ttr))
                        except BatchFailed as exc:  # each item's message or error
                            outcomes = list(exc.results)
                    for i, outcome in zip(chunk, outcomes, strict=True):
                        if isinstance(outcome, BaseException):
                            failed.append((i, outcome))
                        else:
                            done.append((server, i, outcome if isinstance(outcome, int) else _uid(outcome)))
                    bar.advance(len(chunk))
    except BaseException:  # what was stored is printed even when a failure ends the command: a re-run must not guess
        if done:
            _put_report(ctx, tube, done, len(failed))
        raise
    _put_report(ctx, tube, done, len(failed))
    if failed:
        i, error = min(failed, key=lambda f: f[0])
        where = "BODY" if body is not None else f"stdin line {i + 1}"
        unknown = sum(isinstance(e, SocketError) and e.maybe_executed for _, e in failed)
        stored = f" ({len(done)} stored, their ids printed)" if done else ""
        maybe = f", {unknown} of them with an outcome unknown (they may have been stored)" if unknown else ""
        raise Failure(f"{len(failed)} of {len(items)} job(s) not put{stored}{maybe}; first: {where}: {error}")


def _put_report(ctx: Ctx, tube: str, done: list[tuple[Server, int, int]], failed: int) -> None:
    """The jobs ``put`` stored (in the order of their items) on stdout, one ref a line or one document."""
    done.sort(key=lambda d: d[1])
    if ctx.json_output:
        jobs = [{"server": s.url, "id": job_id, "ref": ctx.ref(s, job_id)} for s, _, job_id in done]
        emit({"tube": tube, "jobs": jobs, "failed": failed})
    else:
        for server, _, job_id in done:
            click.echo(ctx.ref(server, job_id))


def _uid(message: object) -> int:
    if not isinstance(message, Message):
        raise TypeError(f"put gave {message!r}")
    return message.uid


def _as_bytes(item: object) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode()


def _import_record(line: str, n: int, tube: str | None) -> tuple[str, JobRecord | tuple[object, JobRecord]]:
    """One NDJSON line of ``export`` (or hand-written): its tube and the job to put."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise Failure(f"line {n}: not JSON ({exc}); nothing was imported") from None
    if not isinstance(record, dict):
        raise Failure(f"line {n}: not a JSON object; nothing was imported")
    target = tube if tube is not None else record.get("tube")
    if not isinstance(target, str):
        raise Failure(f"line {n}: no tube (give --tube); nothing was imported")
    try:
        target = TUBE.convert(target, None, None)
    except click.BadParameter as exc:
        raise Failure(f"line {n}: {exc.message}; nothing was imported") from None

    def number(key: str, default: int) -> int:
        value = record.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
            raise Failure(f"line {n}: {key} {value!r} is not 0..2**32-1; nothing was imported")
        return value

    state = record.get("state", "ready")
    if state not in STATES:
        raise Failure(f"line {n}: unknown state {state!r}; nothing was imported")
    priority, ttr, delay = number("priority", DEFAULT_PRIORITY), number("ttr", DEFAULT_TTR), number("delay", 0)
    if "data" in record and isinstance(record["data"], str):
        data = record["data"].encode()
    elif "data_base64" in record and isinstance(record["data_base64"], str):
        try:
            data = base64.b64decode(record["data_base64"], validate=True)
        except binascii.Error:
            raise Failure(f"line {n}: data_base64 is not base64; nothing was imported") from None
    elif "body" in record:
        return target, (record["body"], JobRecord(b"", priority, ttr, delay, state == "buried"))
    else:
        raise Failure(f"line {n}: no data, data_base64 or body; nothing was imported")
    return target, JobRecord(data, priority, ttr, delay if state == "delayed" else 0, state == "buried")


def _enveloped(client: Client, body: object, job: JobRecord) -> JobRecord:
    """A hand-written record (a ``body``): wrapped in the envelope as ``Client.put`` would."""
    message = client(body, priority=job.priority, delay=job.delay, ttr=job.ttr)
    return JobRecord(str(message).encode(), job.priority, job.ttr, job.delay, job.buried)


@cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--tube", type=TUBE, default=None, help="put every job into this tube (default: each line's tube)")
@pass_ctx
def import_command(ctx: Ctx, file: IO[str], tube: str | None) -> None:
    """Put back the jobs of an `export` file (NDJSON; - for stdin) with their priority, TTR, delay and state."""
    numbered = [(n, line) for n, line in enumerate(file, start=1) if line.strip()]
    parsed = [_import_record(line, n, tube) for n, line in numbered]
    imported: dict[int, int] = {}
    failures: list[tuple[int, str]] = []  # each job not imported: its line in the file, and why
    with progress(ctx, "import", len(parsed)) as bar:
        for server, client, indexes in _spread(ctx, len(parsed)):
            by_tube: dict[str, list[tuple[int, JobRecord]]] = {}
            for i in indexes:
                target, job = parsed[i]
                record = job if isinstance(job, JobRecord) else _enveloped(client, *job)
                by_tube.setdefault(target, []).append((numbered[i][0], record))
            for target, jobs in by_tube.items():
                for start in range(0, len(jobs), BATCH):
                    batch = jobs[start : start + BATCH]
                    outcomes = put_jobs(client, target, [job for _, job in batch])
                    ok = sum(isinstance(o, int) for o in outcomes)
                    imported[server.index] = imported.get(server.index, 0) + ok
                    failures += [
                        (line, f"tube {target!r} on {server.url}: {o}")
                        for (line, _), o in zip(batch, outcomes, strict=True)
                        if isinstance(o, BaseException)
                    ]
                    bar.advance(len(outcomes))
    total = sum(imported.values())
    failures.sort()
    ctx.report(
        {
            "imported": total,
            "failed": len(failures),
            "failed_lines": [line for line, _ in failures],
            "servers": [{"server": s.url, "imported": imported.get(s.index, 0)} for s in ctx.servers],
        },
        f"imported {total} job(s)",
    )
    if failures:  # which lines, so that a re-run can import those alone rather than duplicate the others
        lines = ", ".join(str(line) for line, _ in failures[:20]) + (", ..." if len(failures) > 20 else "")
        raise Failure(
            f"{len(failures)} job(s) not imported (line(s) {lines}; the others were);"
            f" first: line {failures[0][0]}: {failures[0][1]}"
        )


# -- kick, bury, delete, pause, flush ------------------------------------------------------------


@cli.command("kick")
@click.argument("tube", type=TUBE)
@click.argument("bound", metavar="[N]", required=False, type=click.IntRange(1, KICK_ALL))
@pass_ctx
def kick_command(ctx: Ctx, tube: str, bound: int | None) -> None:
    """Kick up to N buried jobs of TUBE in all (delayed ones where none is buried), the servers in turn;
    default all of them on every server."""
    kicked: list[tuple[Server, int]] = []
    left = bound  # N is for all the servers together, as Cluster.kick's bound (None: no bound)
    for server, client in ctx.reachable():
        if left == 0:
            break
        client.queue.use(tube)
        kicked.append((server, client.queue.kick(KICK_ALL if left is None else left)))
        if left is not None:
            left -= kicked[-1][1]
    total = sum(n for _, n in kicked)
    ctx.report(
        {"tube": tube, "kicked": total, "servers": [{"server": s.url, "kicked": n} for s, n in kicked]},
        f"kicked {total} job(s) in tube {tube!r}",
    )


@cli.command("kick-job")
@click.argument("ref", metavar="ID", type=JOB_ID)
@pass_ctx
def kick_job_command(ctx: Ctx, ref: JobRef) -> None:
    """Kick one buried or delayed job."""
    server = ctx.server_of(ref)
    name = ctx.ref(server, ref.id)
    try:
        ctx.client(server).queue.kick_job(ref.id)
    except NotFound:
        raise Failure(f"job {name} on {server.url}: not found, or neither buried nor delayed") from None
    ctx.report({"server": server.url, "ref": name, "kicked": True}, f"kicked job {name}")


@cli.command("bury")
@click.argument("ref", metavar="ID", type=JOB_ID)
@pass_ctx
def bury_command(ctx: Ctx, ref: JobRef) -> None:
    """Bury a ready or delayed job at its own priority (claimed with reserve-job first)."""
    server = ctx.server_of(ref)
    client = ctx.client(server)
    name = ctx.ref(server, ref.id)
    claimed = claim(client, [ref.id])
    if not claimed:
        raise Failure(f"job {name} on {server.url}: not found, or reserved by a worker")
    stats = claimed[0].stats
    client.queue.bury(ref.id, stats.pri)
    ctx.report(
        {"server": server.url, "ref": name, "buried": True, "was": stats.state, "priority": stats.pri},
        f"buried job {name} (was {stats.state}, priority {stats.pri})",
    )


@cli.command("delete")
@click.argument("refs", metavar="ID...", nargs=-1, required=True, type=JOB_ID)
@pass_ctx
def delete_command(ctx: Ctx, refs: tuple[JobRef, ...]) -> None:
    """Delete jobs by id (pipelined, per server)."""
    grouped: dict[int, tuple[Server, list[int]]] = {}  # the ids by server, as given, each once
    for ref in refs:
        server = ctx.server_of(ref)
        ids = grouped.setdefault(server.index, (server, []))[1]
        if ref.id not in ids:  # a job named twice (`5 5`, `1:5 URL#5`) is deleted once, and said so once
            ids.append(ref.id)
    deleted: list[str] = []
    missing: list[str] = []
    for server, ids in grouped.values():
        not_found = set(delete_ids(ctx.client(server), ids))
        deleted += [ctx.ref(server, i) for i in ids if i not in not_found]
        missing += [ctx.ref(server, i) for i in ids if i in not_found]
    ctx.report({"deleted": deleted, "not_found": missing}, f"deleted {len(deleted)} job(s)")
    if missing:
        raise Failure(f"job(s) {', '.join(missing)} not found (gone, or reserved by a worker)")


@cli.command("pause")
@click.argument("tube", type=TUBE)
@click.argument("seconds", type=U32)
@pass_ctx
def pause_command(ctx: Ctx, tube: str, seconds: int) -> None:
    """Pause TUBE for SECONDS on every server (0 ends a pause: beanstalkd keeps 1 s)."""
    paused: list[str] = []
    for server, client in ctx.reachable():
        try:
            client.queue.pause_tube(tube, seconds)
        except NotFound:
            continue
        paused.append(server.url)
    if not paused:
        raise Failure(f"tube {tube!r} not found on " + ", ".join(s.url for s in ctx.servers))
    ctx.report(
        {"tube": tube, "seconds": seconds, "servers": paused},
        f"paused tube {tube!r} for {seconds} s on {len(paused)} server(s)",
    )


@cli.command("flush")
@click.argument("tube", type=TUBE)
@click.option("--ready", is_flag=True, help="delete the ready jobs")
@click.option("--delayed", is_flag=True, help="delete the delayed jobs")
@click.option("--buried", is_flag=True, help="delete the buried jobs")
@click.option(
    "--records", is_flag=True, help="also delete the worker's failure records (TUBE.failed.ID) whose job is gone"
)
@click.option("--yes", is_flag=True, help="do not ask")
@pass_ctx
def flush_command(ctx: Ctx, tube: str, ready: bool, delayed: bool, buried: bool, records: bool, yes: bool) -> None:
    """Delete TUBE's jobs (all of ready, delayed and buried unless some are chosen); reserved ones stay.

    A worker's failure records (TUBE.failed.ID) stay unless --records: then each record whose job is gone
    (flushed now or before) is deleted too; a record whose job is still there is kept.
    """
    states = tuple(s for s, on in zip(STATES_MOVED, (ready, delayed, buried), strict=True) if on) or STATES_MOVED
    up = list(ctx.reachable())
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"flush of tube {tube!r} asks for confirmation: give --yes")
        also = " and the failure records of jobs gone" if records else ""
        click.confirm(f"Delete every {'/'.join(states)} job of tube {tube!r}{also} on {len(up)} server(s)?", abort=True)
    report: list[dict[str, object]] = []
    for server, client in up:
        deleted = skipped = reserved = 0
        counted = tube_count(client, tube)
        with progress(ctx, f"flush {tube} on {server.url}", jobs_in(counted, states)) as bar:
            only_ready = "ready" in states and jobs_in(counted, [s for s in states if s != "ready"]) == 0
            bounds = walk_bounds(client, tube) if jobs_in(counted, states) else None
            if bounds is not None:  # one walk deletes them all; with only ready jobs to go, unless sparse
                walk = flush_walk(client, tube, *bounds, states, bar.advance, dense=only_ready)
                deleted, skipped = walk.deleted, walk.skipped
                if walk.gave_up:  # a sparse tube: its ready jobs by reserve, whatever ids they have
                    reserved = flush_ready(client, tube, jobs_in(tube_count(client, tube), ("ready",)), bar.advance)
                    deleted += reserved
                    bounds = walk_bounds(client, tube) if jobs_in(tube_count(client, tube), states) else None
                    if bounds is not None:  # ready jobs no reserve got (a paused tube)
                        walk = flush_walk(client, tube, *bounds, states, bar.advance)
                        deleted, skipped = deleted + walk.deleted, skipped + walk.skipped
        stale = stale_records(client, tube, purge=records)
        report.append(
            {
                "server": server.url,
                "deleted": deleted,
                "skipped": skipped,
                "by_reserve": reserved,
                "records_deleted": stale if records else 0,
                "records_kept": 0 if records else stale,
            }
        )
    total = sum(int(str(r["deleted"])) for r in report)
    purged = sum(int(str(r["records_deleted"])) for r in report)
    kept = sum(int(str(r["records_kept"])) for r in report)
    text = f"deleted {total} job(s) from tube {tube!r}"
    if records:
        text += f" and {purged} failure record(s)"
    elif kept:
        text += f"; kept {kept} failure record(s) of jobs gone ({tube}.failed.ID): --records deletes them"
    ctx.report(
        {
            "tube": tube,
            "states": list(states),
            "deleted": total,
            "records_deleted": purged,
            "records_kept": kept,
            "servers": report,
        },
        text,
    )


# -- move, export --------------------------------------------------------------------------------


@cli.command("move")
@click.argument("src", type=TUBE)
@click.argument("dst", type=TUBE)
@click.option("--to", "to_url", metavar="URL", default=None, help="the destination server (default: the same one)")
@pass_ctx
def move_command(ctx: Ctx, src: str, dst: str, to_url: str | None) -> None:
    """Move SRC's jobs into DST (on this server or --to URL), keeping priority, TTR, delay and state.

    Each job is claimed with reserve-job, its copy put (a buried one held back, then buried), and only
    then the original deleted. Jobs a worker holds are left in SRC.
    """
    target: Client | None = None
    to_server: Server | None = None
    if to_url is not None:
        try:
            servers = parse_servers([to_url])
        except InvalidArgument as exc:  # a malformed URL
            raise click.BadParameter(str(exc), param_hint="--to") from None
        if len(servers) != 1:  # a comma-separated list, or only commas
            raise click.BadParameter(f"{to_url!r} must be one server URL", param_hint="--to")
        (to_server,) = servers
        try:
            target = connect(to_server, ctx.timeout)
        except SocketError as exc:
            raise Unreachable(f"server {to_url} unreachable: {exc}") from exc
    report: list[dict[str, object]] = []
    failures: list[str] = []
    try:
        for server, client in ctx.reachable():
            if src == dst and (to_server is None or to_server.url == server.url):  # --to the same server too
                raise click.UsageError(f"move {src!r} to itself on {server.url}: name another tube or --to")
            dest = target if target is not None else client
            moved = left = 0
            with progress(ctx, f"move {src} -> {dst}", jobs_in(tube_count(client, src), STATES_MOVED)) as bar:
                ids = snapshot(client, src)
                bar.total(len(ids))
                for start in range(0, len(ids), BATCH):
                    claimed = pending = claim(client, ids[start : start + BATCH])
                    copied: list[Claimed] = []  # copied, their originals not yet deleted
                    try:
                        outcomes = put_jobs(dest, dst, [job.record() for job in claimed])
                        done = [job for job, o in zip(claimed, outcomes, strict=True) if isinstance(o, int)]
                        pending = [job for job, o in zip(claimed, outcomes, strict=True) if not isinstance(o, int)]
                        failures += [f"job {ctx.ref(server, j.stats.id)}" for j in pending]
                        copied = done
                        delete_ids(client, [job.stats.id for job in done])
                        copied = []
                        restore(client, pending)
                    except BaseException as exc:  # the claimed jobs not copied go back as they were, not as ready
                        _give_back(client, pending, exc, "move", to_url, copied=len(copied))
                    moved += len(done)
                    bar.advance(len(ids[start : start + BATCH]))
                left = jobs_in(tube_count(client, src), ("reserved",))
            report.append({"server": server.url, "moved": moved, "left_reserved": left})
    finally:
        if target is not None:
            target.close()
    total = sum(int(str(r["moved"])) for r in report)
    ctx.report(
        {"from": src, "to": dst, "to_server": to_url, "moved": total, "failed": len(failures), "servers": report},
        f"moved {total} job(s) from {src!r} to {dst!r}" + (f" on {to_url}" if to_url else ""),
    )
    if failures:
        raise Failure(f"{len(failures)} job(s) could not be moved and were put back: {', '.join(failures[:5])}")


@cli.command("export")
@click.argument("tube", type=TUBE)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=STATE,
    help="only jobs in this state (repeatable; default ready, delayed and buried)",
)
@click.option("--delete", is_flag=True, help="claim each job (reserve-job), write it, then delete it")
@pass_ctx
def export_command(ctx: Ctx, tube: str, states: tuple[str, ...], delete: bool) -> None:
    """Write TUBE's jobs to stdout as NDJSON: bytes, priority, TTR, remaining delay, state.

    Without --delete nothing is reserved or changed (peek by id); `import` puts them back.
    """
    wanted = states or STATES_MOVED
    if delete and "reserved" in wanted:
        raise click.UsageError("export --delete cannot take reserved jobs from their workers")
    out = sys.stdout
    exported = 0
    for server, client in ctx.reachable():
        with progress(ctx, f"export {tube}", jobs_in(tube_count(client, tube), wanted)) as bar:
            if not delete:  # the walk, then the peeks, written as they come (see _bulk)
                bounds = walk_bounds(client, tube)
                if bounds is not None:
                    exported += export_lines(client, server.url, tube, *bounds, wanted, out, bar.advance)
                continue
            ids = snapshot(client, tube)
            bar.total(len(ids))
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                claimed = claim(client, chunk)
                jobs = [(job.stats, job.message) for job in claimed if job.stats.state in wanted]
                try:
                    restore(client, [job for job in claimed if job.stats.state not in wanted])
                    out.write(
                        "".join(
                            json_text({"server": server.url, **job_record(stats, message, body=False, data=True)})
                            + "\n"
                            for stats, message in jobs
                        )
                    )
                    out.flush()
                except BaseException as exc:  # not written: the claimed jobs go back as they were, not as ready
                    if isinstance(exc, BrokenPipeError):  # the reader went away: what is left unwritten goes nowhere
                        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
                    wrote = f" ({exported} job(s) were exported and deleted before)"
                    _give_back(client, [j for j in claimed if j.stats.state in wanted], exc, "export", wrote)
                delete_ids(client, [stats.id for stats, _ in jobs])
                exported += len(jobs)
                bar.advance(len(chunk))
    out.flush()
    if not ctx.json_output:
        click.echo(f"exported {exported} job(s) from tube {tube!r}", err=True)


def _give_back(
    client: Client, claimed: Sequence[Claimed], exc: BaseException, what: str, detail: str | None, copied: int = 0
) -> NoReturn:
    """``exc`` ended ``what`` while ``claimed`` jobs were held (reserve-job, neither copied nor deleted):
    each is given back as it was (a buried one buried, a delayed one delayed), not left to fall back to
    ready when the connection closes. Then it raises the error: one line saying what happened to them.
    ``detail``: for ``move``, the destination (its copies' outcome is unknown if a put may have run);
    for ``export``, what was exported before. ``copied``: jobs of ``move`` copied whose originals' deletes
    did not go through (the source connection lost): they are in both places, and the line says so."""
    if not isinstance(exc, Exception):  # Ctrl-C, an exit: given back, and it goes on as it was
        with suppress(Exception):
            restore(client, claimed)
        raise exc
    try:
        restore(client, claimed)
        back = f"{len(claimed)} claimed job(s) were put back as they were"
    except Exception as lost:  # the connection went too: beanstalkd made them ready
        back = f"{len(claimed)} claimed job(s) could not be put back and are ready again ({lost})"
    if copied:
        back += (
            f"; {copied} job(s) were copied to {detail or 'the destination tube'} but their originals could not"
            " be deleted: they are in both places"
        )
    elif what == "move" and isinstance(exc, SocketError) and exc.maybe_executed:
        back += f"; some of their copies may have been stored on {detail or 'the same server'}"
    elif what == "export":
        back += detail or ""
    if isinstance(exc, BrokenPipeError):
        raise Failure(f"{what}: stdout was closed (broken pipe); {back}") from exc
    reason = str(exc) if isinstance(exc, OSError | BeanstalkmException) else f"{type(exc).__name__}: {exc}"
    raise (Unreachable if isinstance(exc, SocketError) else Failure)(f"{what}: {reason}; {back}") from exc


# -- worker, failed: the worker's own argparse CLI -----------------------------------------------


def _pass_through(ctx: Ctx, command: str, args: Sequence[str]) -> None:
    from beanstalkm.worker_main import main  # only when run: the worker's imports are not every command's

    code = main(
        [command, *args],
        servers=[s.url for s in ctx.servers] if ctx.named else [],  # the default is the worker's own to find
        json_output=ctx.json_output,
        timeout=ctx.timeout,
        debug=ctx.debug,
    )
    raise click.exceptions.Exit(code)


_PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@cli.command("worker", context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def worker_command(ctx: Ctx, args: tuple[str, ...]) -> None:
    """Run a worker: `beanstalkm worker pkg.module:worker [-c N] [--burst] ...` (see its --help)."""
    _pass_through(ctx, "worker", args)


@cli.command("failed", context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def failed_command(ctx: Ctx, args: tuple[str, ...]) -> None:
    """The worker's failure records: `failed ls|show|retry|purge` (see its --help)."""
    _pass_through(ctx, "failed", args)


from beanstalkm.cli._top import top_command  # noqa: E402 - top builds on the helpers above

cli.add_command(top_command)


# -- running -------------------------------------------------------------------------------------


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    click.echo(f"beanstalkm: {message}", err=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:  # click's main returns a click.exceptions.Exit's code, and makes Ctrl-C an Abort
        result = cli.main(args=args, prog_name="beanstalkm", standalone_mode=False)
    except click.Abort:
        return _fail("aborted", EXIT_FAILED, False)
    except click.ClickException as exc:  # usage (2), Failure (1), Unreachable (3)
        return _fail(exc.format_message(), exc.exit_code, debug)
    except InvalidArgument as exc:
        return _fail(str(exc), EXIT_USAGE, debug)
    except SocketError as exc:
        return _fail(f"connection lost: {exc}", EXIT_UNREACHABLE, debug)
    except BeanstalkmException as exc:
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED, debug)
    except KeyboardInterrupt:  # a Ctrl-C outside click's own handling (while it reports one, say)
        return _fail("interrupted", 130, False)
    except Exception as exc:
        return _fail(f"internal error: {type(exc).__name__}: {exc} (--debug shows the traceback)", EXIT_FAILED, debug)
    return result if isinstance(result, int) else EXIT_OK
