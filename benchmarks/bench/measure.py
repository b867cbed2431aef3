"""Running: the preflight, interleaved chunks, rounds, and the statistics over them."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
from typing import Any

import beanstalkm
from bench import greenstalk
from bench.cases import Case
from bench.cases_sync import bsm_client
from bench.env import BIG, IMPLS, PRIORITY, TO, TTR, Address, Env, Prepared
from bench.wire import drain, prefill


def rotated(items: tuple[str, ...], by: int) -> tuple[str, ...]:
    by %= len(items)
    return items[by:] + items[:by]


def measure(env: Env, case: Case, n: int, chunks: int, round_index: int) -> dict[str, tuple[float, float]]:
    """One round of ``case``: (ops/s, client CPU microseconds per op) of every implementation, their chunks
    interleaved; tubes drained after. The CPU is this process's own (``time.process_time``): what the client
    spends per operation, whatever the scheduler does with the two processes."""
    addr = env.big_addr if case.big else env.addr
    tubes = {impl: f"{env.prefix}.{case.name}.{impl}.r{round_index + 1}" for impl in IMPLS}
    if case.prefill:
        for impl in IMPLS:
            prefill(addr, tubes[impl], env.envelope, n)
    order = rotated(IMPLS, round_index)
    prepared: dict[str, Prepared] = {}
    elapsed = dict.fromkeys(IMPLS, 0.0)
    cpu = dict.fromkeys(IMPLS, 0.0)
    try:
        for impl in order:
            prepared[impl] = case.impls[impl].prepare(env, tubes[impl], n)
        chunks = case.chunks(chunks)
        k = n // chunks
        for chunk in range(chunks):
            for impl in rotated(order, chunk):
                run = prepared[impl][0]
                gc.collect()
                start, cpu_start = time.perf_counter(), time.process_time()
                run(k)
                elapsed[impl] += time.perf_counter() - start
                cpu[impl] += time.process_time() - cpu_start
    finally:
        for _, close in prepared.values():
            close()
    expected = n if case.leaves_jobs else 0
    for impl in IMPLS:
        left = drain(addr, tubes[impl])
        if left != expected:
            raise RuntimeError(f"{case.name}/{impl}: {left} jobs left in {tubes[impl]}, expected {expected}")
    return {impl: (n / elapsed[impl], cpu[impl] / n * 1e6) for impl in IMPLS}


Samples = dict[str, dict[str, list[tuple[float, float]]]]
"""Per case, per implementation: each round's (ops/s, client CPU us per op)."""


def run_rounds(env: Env, cases: tuple[Case, ...], rounds: int, chunks: int, quick: bool) -> Samples:
    samples: Samples = {c.name: {i: [] for i in IMPLS} for c in cases}
    for r in range(-1, rounds):  # round -1: the warm-up, discarded
        start = time.perf_counter()
        for case in cases:
            result = measure(env, case, case.count(quick, chunks), chunks, r)
            if r >= 0:
                for impl in IMPLS:
                    samples[case.name][impl].append(result[impl])
        label = "warm-up round (discarded)" if r < 0 else f"round {r + 1}/{rounds}"
        print(f"  {label}: {time.perf_counter() - start:.1f} s", flush=True)
    return samples


def preflight(env: Env) -> None:
    """Make sure the comparison is of like with like, and that validation is on."""
    tube = f"{env.prefix}.preflight"
    with bsm_client(env.addr, watch=tube) as client:
        gs = greenstalk.Client(env.addr, use=tube, watch=tube)
        try:
            gs.put(env.envelope.decode(), PRIORITY, 0, TTR)
            message = client.reserve(5, drop=True)
            if message is None or message.body != {"n": 0, "to": TO} or not message.envelope:
                raise RuntimeError(f"beanstalkm did not read the envelope greenstalk put back: {message!r}")
            gs.put(json.dumps({"n": 1, "to": TO}), PRIORITY, 0, TTR)
            message = client.reserve(5, drop=True)
            if message is None or message.body != {"n": 1, "to": TO} or message.envelope:
                raise RuntimeError(f"beanstalkm did not read greenstalk's plain JSON back: {message!r}")
            client.put({"n": 2, "to": TO}, tube)
            job = gs.reserve(5)
            gs.delete(job)
            if json.loads(job.body)["body"] != {"n": 2, "to": TO}:
                raise RuntimeError("greenstalk did not read beanstalkm's envelope back")
        finally:
            gs.close()
        prefill(env.addr, tube, b'{"@context":"message","body":1}', 1)
        try:
            client.reserve(5, drop=True)
        except beanstalkm.InvalidEnvelope as exc:
            exc.message.delete()
        else:
            raise RuntimeError("validation is off: an invalid envelope was accepted")


def make_env(addr: Address, big_addr: Address, loop: asyncio.AbstractEventLoop, pool_size: int) -> Env:
    prefix = f"bench{os.getpid()}"
    big_body = "0123456789abcdef" * (BIG // 16)
    tube = f"{prefix}.envelope"
    with bsm_client(addr, watch=tube) as client:
        client.put({"n": 0, "to": TO}, tube)
        small = client.reserve(5, drop=True)
    with bsm_client(big_addr, watch=tube) as client:
        client.put(big_body, tube)
        large = client.reserve(5, drop=True)
    if small is None or small.raw is None or large is None or large.raw is None:
        raise RuntimeError("could not read back the envelopes beanstalkm puts")
    return Env(addr, big_addr, prefix, small.raw, big_body, large.raw, loop, pool_size)


def spread(values: list[float]) -> float:
    """Half the range of ``values`` over their median."""
    return (max(values) - min(values)) / 2 / statistics.median(values)


def ratio_summary(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median of the per-round ratios, and their range."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def summarize(samples: Samples, cases: tuple[Case, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        ops = {impl: [o for o, _ in samples[case.name][impl]] for impl in IMPLS}
        cpu = {impl: [c for _, c in samples[case.name][impl]] for impl in IMPLS}
        out[case.name] = {
            "title": case.title,
            "unit": case.unit,
            "other": case.other,
            "impls": {
                (case.other if impl == "other" else impl): {
                    "what": case.impls[impl].what,
                    "ops_per_s": statistics.median(ops[impl]),
                    "rounds": ops[impl],
                    "spread": spread(ops[impl]),
                    "cpu_us_per_op": statistics.median(cpu[impl]),
                    "cpu_rounds": cpu[impl],
                }
                for impl in IMPLS
            },
            "ratio_vs_other": ratio_summary(ops["beanstalkm"], ops["other"]),
            "ratio_vs_raw": ratio_summary(ops["beanstalkm"], ops["raw"]),
            "other_vs_raw": ratio_summary(ops["other"], ops["raw"]),
            "cpu_vs_other": ratio_summary(cpu["beanstalkm"], cpu["other"]),
            "cpu_vs_raw": ratio_summary(cpu["beanstalkm"], cpu["raw"]),
        }
    return out
