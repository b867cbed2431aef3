"""beanstalkm memory benchmarks: peak RSS, measured in fresh subprocesses.

Usage::

    python benchmarks/memory.py [--quick] [--json PATH] [--check]

1. Growth with the message count: a child puts N messages with ``Client.put``
   and then reserves them with ``Client.reserve(drop=True)`` (and, in another
   child, the same with ``put_many``/``reserve_many`` in batches of 100), for
   N = 10,000 and N = 100,000. Its peak RSS must not grow with N.
2. A 1 MiB body: a child puts one 1 MiB body and reserves it back; a baseline
   child does exactly the same with a small body (it builds the 1 MiB string
   too, so only what beanstalkm does with it differs); five of each,
   alternating. The extra peak RSS of the median 1 MiB child over the median
   baseline, divided by 1 MiB, must be at most 3. Another child attributes
   that peak to the put and to the reserve, resetting the peak in between
   (``/proc/self/clear_refs``).

Peak RSS is ``VmHWM`` from ``/proc/self/status`` where there is one (Linux),
else ``resource.getrusage().ru_maxrss``; both are reported. On Linux
``ru_maxrss`` of a process started with fork/vfork+exec starts at its
parent's peak, so it can only be trusted where it exceeds the parent's.
Validation is on (``validate=True``, jsonschema installed) and warmed up
before the baseline is taken.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

BODY: dict[str, Any] = {
    "task": "send-email",
    "to": "user@example.org",
    "subject": "Your weekly report",
    "attempt": 1,
    "tags": ["report", "weekly"],
}
MIB = 1024 * 1024
BATCH = 100
GROWTH_MAX_KIB = 1024  # "does not grow with the count": at most 1 MiB more peak RSS for 10x the messages
BIG_RATIO_MAX = 3.0  # a 1 MiB body costs at most 3x its size in extra peak RSS
REPEAT = 5  # baseline and 1 MiB children, each; their medians are compared (the figure moves ~0.1x run to run)


# -- measuring (in the child) -------------------------------------------------------------------------


def status_kib(field: str) -> int | None:
    """A ``Vm*`` field of /proc/self/status in KiB, or None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def maxrss_kib() -> int:
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value  # bytes on macOS, KiB elsewhere


def peak_kib() -> int:
    """Peak RSS so far, in KiB: VmHWM where available, else ru_maxrss."""
    hwm = status_kib("VmHWM")
    return hwm if hwm is not None else maxrss_kib()


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def snapshot() -> dict[str, int | None]:
    return {
        "peak_kib": peak_kib(),
        "vm_hwm_kib": status_kib("VmHWM"),
        "ru_maxrss_kib": maxrss_kib(),
        "rss_kib": status_kib("VmRSS"),
    }


def client(port: int, tube: str) -> Any:
    import beanstalkm

    c = beanstalkm.Client("127.0.0.1", port, validate=True)
    c.watch(tube)
    c.ignore("default")
    return c


def child_count(port: int, n: int, batch: bool) -> dict[str, Any]:
    tube = f"mem.count.{'batch' if batch else 'single'}.{n}"
    c = client(port, tube)
    bodies = [BODY] * BATCH
    # Warm up every path (and validation) before the baseline.
    for _ in range(3):
        if batch:
            c.put_many(bodies, tube)
            c.reserve_many(BATCH, 0)
            continue
        for _ in range(BATCH):
            c.put(BODY, tube)
        for _ in range(BATCH):
            c.reserve(0, drop=True)
    gc.collect()
    before = snapshot()
    if batch:
        for _ in range(n // BATCH):
            c.put_many(bodies, tube)
        got = 0
        for _ in range(n // BATCH):
            got += len(c.reserve_many(BATCH, 0))
    else:
        for _ in range(n):
            c.put(BODY, tube)
        got = 0
        for _ in range(n):
            if c.reserve(0, drop=True) is not None:
                got += 1
    after = snapshot()
    c.close()
    if got != n:
        raise RuntimeError(f"reserved {got} of {n}")
    return {"n": n, "batch": batch, "before": before, "after": after}


def child_big(port: int, size: int, phases: bool) -> dict[str, Any]:
    tube = f"mem.big.{size}.{'phases' if phases else 'whole'}"
    c = client(port, tube)
    big = "0123456789abcdef" * (MIB // 16)  # built by the baseline too
    body: Any = big if size else BODY
    for _ in range(3):
        c.put(BODY, tube)
        c.reserve(0, drop=True)
    gc.collect()
    result: dict[str, Any] = {"size": len(big) if size else 0, "before": snapshot()}
    if phases and not reset_peak():
        result["phases"] = None
        phases = False
    message = c.put(body, tube)
    del message
    gc.collect()
    if phases:
        result["after_put"] = snapshot()
        reset_peak()
    received = c.reserve(5, drop=True)
    if received is None or received.body != body:
        raise RuntimeError("the body did not come back")
    del received
    gc.collect()
    result["after"] = snapshot()
    c.close()
    return result


# -- driving (in the parent) --------------------------------------------------------------------------


def target(text: str, value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"target": text, "value": value, "unit": unit, "kind": "max", "limit": limit, "met": value <= limit}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose final peak RSS is the median of ``runs`` (an odd number of them)."""
    return sorted(runs, key=lambda r: int(r["after"]["peak_kib"]))[len(runs) // 2]


def spawn(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"memory child {args} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measure(quick: bool) -> dict[str, Any]:
    from beanstalkm.testing import BeanstalkdServer

    small_n, large_n = (2_000, 20_000) if quick else (10_000, 100_000)
    counts: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    with BeanstalkdServer() as server, BeanstalkdServer(max_job_size=2 * MIB) as big_server:
        port, big_port = str(server.port), str(big_server.port)
        for batch in (False, True):
            runs = [spawn("count", port, str(n), "batch" if batch else "single") for n in (small_n, large_n)]
            small, large = (r["after"]["peak_kib"] for r in runs)
            growth = large - small
            what = "put_many/reserve_many" if batch else "put/reserve(drop=True)"
            counts.append(
                {"api": what, "n": [small_n, large_n], "peak_kib": [small, large], "growth_kib": growth, "runs": runs}
            )
            targets.append(
                target(
                    f"peak RSS does not grow with the count ({what}, {small_n:,} -> {large_n:,} msgs)",
                    growth,
                    GROWTH_MAX_KIB,
                    "KiB",
                )
            )
        # Baseline and 1 MiB children alternate; the median of REPEAT of each is compared.
        baselines: list[dict[str, Any]] = []
        bigs: list[dict[str, Any]] = []
        for _ in range(REPEAT):
            baselines.append(spawn("big", big_port, "0", "whole"))
            bigs.append(spawn("big", big_port, str(MIB), "whole"))
        baseline, big = median_run(baselines), median_run(bigs)
        phases = spawn("big", big_port, str(MIB), "phases")
    extra_kib = big["after"]["peak_kib"] - baseline["after"]["peak_kib"]
    ratio = extra_kib * 1024 / MIB
    big_result: dict[str, Any] = {
        "size": MIB,
        "baseline_peak_kib": baseline["after"]["peak_kib"],
        "big_peak_kib": big["after"]["peak_kib"],
        "extra_kib": extra_kib,
        "ratio_to_size": ratio,
        "baseline_peaks_kib": [r["after"]["peak_kib"] for r in baselines],
        "big_peaks_kib": [r["after"]["peak_kib"] for r in bigs],
        "runs": {"baseline": baseline, "big": big, "phases": phases},
    }
    if "after_put" in phases:
        start = phases["before"]["rss_kib"]
        big_result["put_peak_extra_kib"] = phases["after_put"]["vm_hwm_kib"] - start
        big_result["reserve_peak_extra_kib"] = phases["after"]["vm_hwm_kib"] - phases["after_put"]["rss_kib"]
    targets.append(
        target("a 1 MiB body put+reserve costs at most 3x its size in extra peak RSS", ratio, BIG_RATIO_MAX, "x")
    )
    return {"counts": counts, "big": big_result, "targets": targets, "quick": quick}


def report(result: dict[str, Any]) -> None:
    print()
    print("memory (peak RSS of a fresh client process; VmHWM, KiB)")
    for c in result["counts"]:
        (n1, n2), (p1, p2) = c["n"], c["peak_kib"]
        print(f"  {c['api']:<24} {n1:>7,} msgs: {p1:>7,}   {n2:>7,} msgs: {p2:>7,}   growth: {c['growth_kib']:+,} KiB")
    b = result["big"]
    print(
        f"  1 MiB body put+reserve: baseline {b['baseline_peak_kib']:,}, with the 1 MiB body {b['big_peak_kib']:,} "
        f"(medians of {len(b['big_peaks_kib'])}): extra {b['extra_kib']:,} KiB = {b['ratio_to_size']:.2f}x the body"
    )
    if "put_peak_extra_kib" in b:
        print(
            f"    by phase: put +{b['put_peak_extra_kib']:,} KiB ({b['put_peak_extra_kib'] / 1024:.2f}x), "
            f"reserve +{b['reserve_peak_extra_kib']:,} KiB ({b['reserve_peak_extra_kib'] / 1024:.2f}x), "
            "each over the RSS just before it"
        )
    print("memory targets")
    for t in result["targets"]:
        mark = "met   " if t["met"] else "MISSED"
        value = f"{t['value']:+,} KiB" if t["unit"] == "KiB" else f"{t['value']:.2f}x"
        limit = f"{t['limit']:,}{' KiB' if t['unit'] == 'KiB' else 'x'}"
        print(f"  {mark} {t['target']:<78} {value:>10}  (needs <= {limit})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 vs 20,000 messages instead of 10,000 vs 100,000")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, port, *rest = args.child
        if kind == "count":
            out = child_count(int(port), int(rest[0]), rest[1] == "batch")
        else:
            out = child_big(int(port), int(rest[0]), rest[1] == "phases")
        print(json.dumps(out))
        return 0
    result = measure(args.quick)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    missed = [t for t in result["targets"] if not t["met"]]
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
