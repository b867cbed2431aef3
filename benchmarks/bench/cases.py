"""The cases: what each implementation runs for each, and how many operations."""

from __future__ import annotations

from dataclasses import dataclass

from bench.cases_async import (
    aio_put,
    aio_put_alone,
    aio_reserve_delete,
    bsm_async_put,
    bsm_async_reserve,
    bsm_client_put,
    bsm_client_put_alone,
    raw_async_put,
    raw_async_put_alone,
    raw_async_put_pipelined,
    raw_async_reserve_delete,
)
from bench.cases_batch import bsm_put_many, bsm_reserve_many, raw_put_pipelined, raw_reserve_delete_pipelined
from bench.cases_sync import (
    bsm_big,
    bsm_list_tubes,
    bsm_put,
    bsm_queue_put,
    bsm_reserve_drop,
    bsm_reserve_keep,
    bsm_stats,
    gs_big,
    gs_list_tubes,
    gs_put,
    gs_put_bytes,
    gs_reserve_delete,
    gs_stats,
    raw_big,
    raw_put,
    raw_reserve_delete,
    raw_simple,
)
from bench.cases_worker import bsm_worker
from bench.env import ASYNC_CHUNKS, BATCH, TASKS, Prepare


@dataclass(frozen=True)
class Impl:
    what: str
    prepare: Prepare


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    n: int  # operations per implementation per round, full run
    quick_n: int
    unit: str  # what one operation is
    other: str  # the client compared against: greenstalk or aiostalk
    impls: dict[str, Impl]
    prefill: bool = False  # the tube holds n envelopes before the timed loop
    leaves_jobs: bool = False  # the timed loop puts n jobs (drained and counted afterwards)
    big: bool = False  # runs on the server started with -z 2 MiB
    step: int = 1  # a chunk is a multiple of this many operations
    max_chunks: int | None = None  # async: each chunk starts TASKS tasks, so fewer, longer chunks

    def chunks(self, chunks: int) -> int:
        return chunks if self.max_chunks is None else min(chunks, self.max_chunks)

    def count(self, quick: bool, chunks: int) -> int:
        """Operations per implementation per round: ``n`` rounded down to whole chunks of whole steps."""
        chunks = self.chunks(chunks)
        per_chunk = max(self.step, (self.quick_n if quick else self.n) // chunks // self.step * self.step)
        return per_chunk * chunks


SINGLE, QUICK_SINGLE = 9000, 1800


PUT_WHAT = 'Client.put({"n": i, "to": ...}, tube)'


GS_PUT_WHAT = 'put(json.dumps({"n": i, "to": ...}))'


GS_CYCLE_WHAT = "reserve(0) + json.loads(job.body) + delete(job)"


ASYNC = f"{TASKS} tasks, pool of --pool-size"


def _worker_case(concurrency: int) -> Case:
    """``Worker(concurrency=...)`` with a no-op handler against the hand-written greenstalk loop."""
    name = "worker" if concurrency == 1 else f"worker_c{concurrency}"
    one = "" if concurrency == 1 else " (one connection)"
    return Case(
        name,
        f"Worker, no-op handler, {concurrency} slot{'s' if concurrency > 1 else ''}",
        SINGLE,
        QUICK_SINGLE,
        "job",
        "greenstalk",
        {
            "beanstalkm": Impl(
                f"Worker(concurrency={concurrency}).run(max_jobs=k), handler does nothing", bsm_worker(concurrency)
            ),
            "other": Impl(f"hand-written loop{one}: {GS_CYCLE_WHAT}", gs_reserve_delete),
            "raw": Impl(f"reserve-with-timeout 0 + delete{one}, bytes not decoded", raw_reserve_delete),
        },
        prefill=True,
    )


CASES: tuple[Case, ...] = (
    Case(
        "put",
        "put a small body",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(PUT_WHAT, bsm_put),
            "other": Impl(GS_PUT_WHAT, gs_put),
            "raw": Impl("sendall(put <envelope>)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "queue_put",
        "low-level put of the same bytes",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.put(<envelope bytes>)", bsm_queue_put),
            "other": Impl("put(<the same envelope bytes>)", gs_put_bytes),
            "raw": Impl("sendall(put <envelope>)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "reserve_drop",
        "reserve + decode + delete",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=True)", bsm_reserve_drop),
            "other": Impl(GS_CYCLE_WHAT, gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete, bytes not decoded", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "reserve_keep",
        "reserve, then delete the message",
        SINGLE // 2,
        QUICK_SINGLE // 2,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=False); message.delete()", bsm_reserve_keep),
            "other": Impl(GS_CYCLE_WHAT, gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete, bytes not decoded", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "stats",
        "stats, parsed",
        SINGLE // 3,
        QUICK_SINGLE // 3,
        "call",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.stats() -> ServerStats", bsm_stats),
            "other": Impl("stats() -> dict", gs_stats),
            "raw": Impl("stats, bytes read unparsed", raw_simple(b"stats\r\n")),
        },
    ),
    Case(
        "list_tubes",
        "list-tubes, parsed",
        SINGLE // 2,
        QUICK_SINGLE // 2,
        "call",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.list_tubes()", bsm_list_tubes),
            "other": Impl("tubes()", gs_list_tubes),
            "raw": Impl("list-tubes, bytes read unparsed", raw_simple(b"list-tubes\r\n")),
        },
    ),
    Case(
        "big",
        "1 MiB body: put + reserve + delete (-z 2 MiB)",
        60,
        12,
        "cycle",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.put(<1 MiB str>) + Client.reserve(0, drop=True)", bsm_big),
            "other": Impl("put(json.dumps(<1 MiB str>)) + reserve(0) + json.loads + delete", gs_big),
            "raw": Impl("put <envelope> + reserve + delete, bytes not decoded", raw_big),
        },
        big=True,
    ),
    Case(
        "put_many",
        f"batch put ({BATCH} per call)",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(f"Client.put_many(<{BATCH} bodies>, tube)", bsm_put_many),
            "other": Impl(f"sequential {GS_PUT_WHAT}", gs_put),
            "raw": Impl(f"pipelined: {BATCH} puts in one sendall, {BATCH} replies", raw_put_pipelined),
        },
        leaves_jobs=True,
        step=BATCH,
    ),
    Case(
        "reserve_many",
        f"batch reserve+delete ({BATCH} per call)",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(f"Client.reserve_many({BATCH}, 0, drop=True)", bsm_reserve_many),
            "other": Impl(f"sequential {GS_CYCLE_WHAT}", gs_reserve_delete),
            "raw": Impl(
                f"pipelined: {BATCH} reserves in one sendall, then {BATCH} deletes", raw_reserve_delete_pipelined
            ),
        },
        prefill=True,
        step=BATCH,
    ),
    Case(
        "async_put",
        f"async put ({ASYNC})",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl('AsyncPool.put({"n": i, "to": ...}, tube)', bsm_async_put),
            "other": Impl(f"borrow a client; {GS_PUT_WHAT}", aio_put),
            "raw": Impl("borrow a stream; write(put <envelope>) + readline", raw_async_put),
        },
        leaves_jobs=True,
        max_chunks=ASYNC_CHUNKS,
    ),
    Case(
        "async_reserve",
        f"async reserve+delete ({ASYNC})",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl("AsyncPool.reserve(0, drop=True)", bsm_async_reserve),
            "other": Impl(f"borrow a client; {GS_CYCLE_WHAT}", aio_reserve_delete),
            "raw": Impl(
                "borrow a stream; reserve-with-timeout 0 + delete, bytes not decoded", raw_async_reserve_delete
            ),
        },
        prefill=True,
        max_chunks=ASYNC_CHUNKS,
    ),
    Case(
        "async_client_put",
        f"async put ({TASKS} tasks, one AsyncClient, auto-pipelined)",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl(
                f'{TASKS} tasks: AsyncClient.put({{"n": i, "to": ...}}, tube), one client', bsm_client_put
            ),
            "other": Impl(f"{ASYNC}: borrow a client; {GS_PUT_WHAT}", aio_put),
            "raw": Impl(
                f"one stream, pipelined: {TASKS} puts in one write, then {TASKS} replies", raw_async_put_pipelined
            ),
        },
        leaves_jobs=True,
        step=TASKS,
        max_chunks=ASYNC_CHUNKS,
    ),
    Case(
        "async_put_alone",
        "async put, one task, sequential",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl('one task: AsyncClient.put({"n": i, "to": ...}, tube)', bsm_client_put_alone),
            "other": Impl(f"one task, one client: {GS_PUT_WHAT}", aio_put_alone),
            "raw": Impl("one task, one stream: write(put <envelope>) + readline", raw_async_put_alone),
        },
        leaves_jobs=True,
        max_chunks=ASYNC_CHUNKS,
    ),
    _worker_case(1),
    _worker_case(8),
)
