"""The ``worker`` and ``failed`` commands: run a worker, inspect and act on failure records.

    python -m beanstalkm.worker_main worker pkg.module:worker [-c N] [--burst] [--max-jobs N]
                                             [--grace S] [-s URL ...] [--metrics-port P]
    python -m beanstalkm.worker_main failed ls|show|retry|purge TUBE [ID ...] [-s URL ...] [--json]

``main(argv, servers=..., json_output=..., timeout=...)`` is what the ``beanstalkm`` command passes
``beanstalkm worker ...`` and ``beanstalkm failed ...`` through to. Exit codes: 0 ok (a worker
stopped by SIGTERM or SIGINT included), 1 the command failed, 2 usage (bad arguments, a target that
cannot be imported or is not a worker), 3 no server reachable.
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from beanstalkm._core.urls import default_urls, parse_urls
from beanstalkm._core.worker import RECORD_MARK, FailureRecord, failed_slot
from beanstalkm._errors import BeanstalkmException, InvalidArgument, SocketError
from beanstalkm._generated.commands import TUBE_RULE
from beanstalkm._sync.client import Client
from beanstalkm._sync.failures import list_records, purge_records, retry_records
from beanstalkm._sync.worker import Worker

if TYPE_CHECKING:
    from beanstalkm._async.worker import AsyncWorker

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

CLI_TIMEOUT = 10.0

logger = logging.getLogger("beanstalkm.worker")


class _Usage(Exception):
    """Bad arguments: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(f"{self.prog}: {message}")


def _tube(text: str) -> str:
    """A tube name argument, checked as beanstalkd would (a bad one is a usage error, exit 2)."""
    try:
        return TUBE_RULE.check("tube", text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _job_id(text: str) -> int:
    """A job id argument: a whole number from 1 to 2**64-1 (else a usage error, exit 2)."""
    if not text.isdigit() or not 1 <= int(text) < 2**64:
        raise argparse.ArgumentTypeError(f"bad job id {text!r}: job ids are whole numbers from 1 to 2**64-1")
    return int(text)


# -- the commands ---------------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--server", action="append", default=[], metavar="URL", help="server URL (repeat)")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="connection timeout, seconds")


def _parser() -> _Parser:
    parser = _Parser(prog="beanstalkm", description="Run a beanstalkm worker; inspect failed jobs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    worker = commands.add_parser("worker", help="run a worker: pkg.module:worker")
    worker.add_argument("target", metavar="pkg.module:worker", help="where the Worker or AsyncWorker object is")
    worker.add_argument("-c", "--concurrency", type=int, default=None, metavar="N", help="slots (threads or tasks)")
    worker.add_argument("--burst", action="store_true", help="exit once no job is ready")
    worker.add_argument("--max-jobs", type=int, default=None, metavar="N", help="exit after taking N jobs")
    worker.add_argument("--grace", type=float, default=None, metavar="S", help="seconds handlers get at a stop")
    worker.add_argument("--metrics-port", type=int, default=None, metavar="P", help="serve Prometheus metrics")
    worker.add_argument("--metrics-host", default="0.0.0.0", metavar="ADDR", help="address for --metrics-port")
    worker.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )
    _add_common(worker)
    failed = commands.add_parser("failed", help="failure records: ls, show, retry, purge")
    actions = failed.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for name, text in (
        ("ls", "list a tube's failure records"),
        ("show", "show records in full (tracebacks)"),
        ("retry", "kick buried jobs back with a fresh budget"),
        ("purge", "delete buried jobs and their records"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("tube", type=_tube)
        action.add_argument("ids", nargs="*" if name != "show" else "+", type=_job_id, metavar="ID", help="job ids")
        if name in ("retry", "purge"):
            action.add_argument("--all", action="store_true", help="every record of the tube (no ids given)")
        _add_common(action)
    return parser


def main(
    argv: Sequence[str],
    *,
    servers: Sequence[str] = (),
    json_output: bool = False,
    timeout: float | None = None,
    debug: bool = False,
) -> int:
    """Run ``argv`` (``["worker", ...]`` or ``["failed", ...]``); the exit code. Each failure is one line on
    stderr (with ``debug``, after its traceback)."""
    try:
        return _main(argv, servers, json_output, timeout, debug)
    except (_Usage, BeanstalkmException) as exc:
        if debug:
            traceback.print_exc()
        code, line = _failure(exc)
        print(line, file=sys.stderr)
        return code


def _failure(exc: Exception) -> tuple[int, str]:
    """The exit code and the line on stderr of a failure."""
    if isinstance(exc, _Usage):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, InvalidArgument):
        return EXIT_USAGE, f"beanstalkm: {exc}"
    if isinstance(exc, SocketError):
        return EXIT_UNREACHABLE, f"beanstalkm: no server reachable: {exc}"
    return EXIT_FAILED, f"beanstalkm: {exc}"


def _main(argv: Sequence[str], servers: Sequence[str], json_output: bool, timeout: float | None, debug: bool) -> int:
    args = _parser().parse_args(list(argv))
    named = [*servers, *args.server]  # each checked; else BEANSTALKD_URL, else the default server
    urls = [str(url) for url in parse_urls(named, "server")] if named else default_urls()
    json_output = json_output or args.json
    timeout = args.timeout if args.timeout is not None else timeout
    if args.command == "worker":
        return _worker(args, urls, timeout, bool(servers), debug)
    return _failed(args, urls, timeout if timeout is not None else CLI_TIMEOUT, json_output)


def _load(target: str) -> Any:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise _Usage(f"beanstalkm worker: {target!r} is not pkg.module:attribute")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the worker's module is found from here
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _Usage(f"beanstalkm worker: cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # the module itself failed (a SyntaxError, an error at its top level): exit 2 too
        raise _Usage(
            f"beanstalkm worker: cannot import {module_name!r}: it raised {type(exc).__name__}: {exc}"
            " (--debug shows the traceback)"
        ) from exc
    value = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise _Usage(f"beanstalkm worker: {module_name!r} has no {attribute!r}") from None
    return value


def _worker(args: argparse.Namespace, urls: list[str], timeout: float | None, servers_given: bool, debug: bool) -> int:
    from beanstalkm._async.worker import AsyncWorker

    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )
    worker = _load(args.target)
    if not isinstance(worker, (Worker, AsyncWorker)):
        raise _Usage(f"beanstalkm worker: {args.target} is a {type(worker).__name__}, not a Worker or AsyncWorker")
    worker.configure(concurrency=args.concurrency, grace=args.grace, timeout=timeout)
    if args.server or servers_given or "BEANSTALKD_URL" in os.environ:  # else the worker's own source
        worker.configure(source=urls)  # the slots take the servers in turn
    stop_metrics = _serve_metrics(worker, args.metrics_host, args.metrics_port) if args.metrics_port else None
    try:
        if isinstance(worker, AsyncWorker):
            asyncio.run(worker.run(burst=args.burst, max_jobs=args.max_jobs))
        else:
            worker.run(burst=args.burst, max_jobs=args.max_jobs)
    except Exception as exc:  # a slot that ended on an exception: exit 1, whatever its type (a SocketError too)
        index = failed_slot(exc)
        if index is None:
            raise
        if debug:
            traceback.print_exc()
        print(
            f"beanstalkm worker: worker slot {index} ended on a bug: {type(exc).__name__}: {exc}; the worker"
            " stopped (the other slots within the grace), and the jobs the slot held go back to ready as its"
            " connection closes (its traceback is logged above)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        if stop_metrics is not None:
            stop_metrics()
    return EXIT_OK


def _serve_metrics(worker: Worker | AsyncWorker, host: str, port: int) -> Callable[[], None]:
    """Serve ``worker.stats`` as Prometheus metrics on ``host:port`` (needs ``beanstalkm[prometheus]``)."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
        from prometheus_client.registry import Collector
    except ImportError:
        raise _Usage(
            "beanstalkm worker: --metrics-port needs prometheus_client: pip install 'beanstalkm[prometheus]'"
        ) from None

    class _Stats(Collector):
        def collect(self) -> Iterator[Metric]:
            stats = worker.stats
            for name, value in stats.counters().items():
                yield CounterMetricFamily(
                    f"beanstalkm_worker_{name}", f"beanstalkm worker: {name} (see WorkerStats)", value=value
                )
            summary = SummaryMetricFamily(
                "beanstalkm_worker_handler_seconds", "handler run time by tube", labels=["tube"]
            )
            for tube, durations in stats.durations.items():
                summary.add_metric([tube], durations.count, durations.total)
            yield summary

    registry = CollectorRegistry()
    registry.register(_Stats())
    server, thread = start_http_server(port, addr=host, registry=registry)
    logger.info("metrics on http://%s:%d/metrics", host, port)

    def stop() -> None:
        server.shutdown()
        thread.join(5.0)

    return stop


def _failed(args: argparse.Namespace, urls: list[str], timeout: float | None, as_json: bool) -> int:
    ids: list[int] | None = args.ids or None
    if args.action in ("retry", "purge") and ids is None and not args.all:
        raise _Usage(f"beanstalkm failed {args.action}: name job ids, or --all for every record of the tube")
    if len(urls) > 1:  # job ids are per server: one server at a time, never the first one silently
        raise _Usage(f"beanstalkm failed {args.action}: name one server with -s (given {len(urls)}: {', '.join(urls)})")
    client = Client.from_url(urls[0], timeout=timeout)
    unmet: dict[int, str | None] = {}  # ids named to retry or purge that were not: their record's job state
    try:
        if args.action == "retry":
            records = retry_records(client, args.tube, ids)
        elif args.action == "purge":
            records = purge_records(client, args.tube, ids)
        else:
            records = list_records(client, args.tube, ids)
        if ids is not None and args.action in ("retry", "purge"):
            unmet = dict.fromkeys(sorted(set(ids) - {r.job_id for r in records}))
            if unmet:
                unmet.update((r.job_id, r.state) for r in list_records(client, args.tube, list(unmet)))
    finally:
        client.close()
    if args.action == "show":
        missing = sorted(set(args.ids) - {r.job_id for r in records})
        _print_records(records, as_json, full=True)
        for job_id in missing:
            print(f"beanstalkm failed show: job {job_id} of {args.tube} has no failure record", file=sys.stderr)
        return EXIT_FAILED if missing else EXIT_OK
    if args.action == "ls":
        _print_records(records, as_json, full=False)
        return EXIT_OK
    verb = "kicked" if args.action == "retry" else "purged"
    if as_json:
        print(json.dumps({verb: [r.job_id for r in records]}))
    else:
        print(f"{verb} {len(records)} job(s)" + (": " + " ".join(str(r.job_id) for r in records) if records else ""))
    for job_id, state in unmet.items():  # each id named and not acted on: exit 1, as show's missing ones
        print(
            f"beanstalkm failed {args.action}: job {job_id} of {args.tube} {_unmet(args.action, state)}",
            file=sys.stderr,
        )
    return EXIT_FAILED if unmet else EXIT_OK


def _unmet(action: str, state: str | None) -> str:
    """Why a job named to ``failed retry``/``purge`` was not retried or purged, by its record's job state."""
    if state is None:
        return "has no failure record"
    if action == "retry":
        if state == "gone":
            return "is gone (deleted): not kicked; failed purge removes its record"
        return f"is {state}, not buried (retried already?): not kicked"
    return f"is {state}, not buried (retried and not failed again): left alone with its record"


def _print_records(records: list[FailureRecord], as_json: bool, full: bool) -> None:
    if as_json:
        data = [_record_json(r, full) for r in records]
        print(json.dumps(data if not full or len(data) != 1 else data[0], indent=None if not full else 2))
        return
    if not full:
        print(f"{'JOB':>8}  {'STATE':8}  {'REASON':9}  {'ATTEMPTS':>8}  ERROR")
        for r in records:
            error = f"{r.exception}: {r.message}" if r.exception else r.message
            print(f"{r.job_id:>8}  {r.state or '?':8}  {r.reason:9}  {r.attempts:>8}  {error[:100]}")
        return
    for r in records:
        print(f"job {r.job_id} ({r.tube}), {r.state}: {r.reason} after {r.attempts} attempt(s)")
        print(f"  priority {r.priority}, reserves {r.reserves}, kicks {r.kicks}, record {r.record_id}")
        print(f"  by {r.host} pid {r.pid} at {r.time:.3f}")
        print(f"  {r.exception + ': ' if r.exception else ''}{r.message}")
        if r.traceback:
            print(r.traceback.rstrip())


def _record_json(record: FailureRecord, full: bool) -> dict[str, object]:
    data = {**record.to_json(), "record_id": record.record_id, "state": record.state}
    del data[RECORD_MARK]
    if not full:
        del data["traceback"]
    return data


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
