"""Reporting: the tables, the targets and their check, the memory measurements."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import Case
from bench.env import HERE, IMPLS


@dataclass(frozen=True)
class Target:
    """A ratio a case must reach: beanstalkm / ``versus`` ("other": greenstalk or aiostalk; or "raw"), of
    ops/s (``measure="ops"``: at least ``limit``) or of client CPU per op (``"cpu"``: at most ``limit``)."""

    case: str
    versus: str
    limit: float
    text: str
    measure: str = "ops"


TARGETS: tuple[Target, ...] = (
    # issue 15: no more client CPU per op than greenstalk, and so at least its ops/s
    Target("queue_put", "other", 1.0, "queue.put CPU/op <= greenstalk put (same bytes)", "cpu"),
    Target("put", "other", 1.0, "Client.put CPU/op <= greenstalk put(json.dumps(body))", "cpu"),
    Target("reserve_drop", "other", 1.0, "Client.reserve(drop=True) CPU/op <= greenstalk reserve+loads+delete", "cpu"),
    Target("stats", "other", 1.0, "queue.stats() CPU/call <= greenstalk stats()", "cpu"),
    Target("queue_put", "other", 1.0, "queue.put >= 1.0x greenstalk put (same bytes)"),
    Target("put", "other", 1.0, "Client.put >= 1.0x greenstalk put(json.dumps(body))"),
    Target("reserve_drop", "other", 1.0, "Client.reserve(drop=True) >= 1.0x greenstalk reserve+loads+delete"),
    Target("stats", "other", 1.0, "queue.stats() >= 1.0x greenstalk stats()"),
    # asyncio
    Target("async_client_put", "other", 3.0, "one AsyncClient, 100 tasks put >= 3x aiostalk (100 tasks, 10 conns)"),
    Target("async_client_put", "raw", 0.7, "one AsyncClient, 100 tasks put >= 0.7x a raw pipelined asyncio loop"),
    Target("async_put", "other", 1.2, "AsyncPool put >= 1.2x aiostalk"),
    Target("async_reserve", "other", 1.2, "AsyncPool reserve+delete >= 1.2x aiostalk"),
    Target("async_put_alone", "other", 1.0, "one task, sequential AsyncClient.put >= 1.0x aiostalk"),
    # batches: the client keeps up with the server
    Target("put_many", "raw", 0.9, "put_many >= 0.9x the raw pipelined loop"),
    Target("reserve_many", "raw", 0.95, "reserve_many(drop=True) >= 0.95x the raw pipelined loop"),
    # the worker
    Target("worker", "other", 0.9, "Worker (no-op handler, 1 slot) >= 0.9x a greenstalk reserve/delete loop"),
)


def fmt_ratio(r: dict[str, float]) -> str:
    return f"{r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]"


def print_table(summary: dict[str, Any], cases: tuple[Case, ...], other: str) -> None:
    """Ops/s and their ratios; then client CPU per operation (us, ``time.process_time``) and its ratio."""
    rows = [c for c in cases if c.other == other]
    if not rows:
        return
    head = (
        f"{'case':<17}{'unit':>5}{'beanstalkm':>11}{other:>11}{'raw':>9}  "
        f"{'vs ' + other + ' [range]':<24}{'vs raw [range]':<22}"
        f"{'cpu us/op bsm/' + other[:5] + '/raw':<27}{'cpu vs ' + other[:5]:<13}spread"
    )
    print()
    print(head)
    print("-" * len(head))
    for case in rows:
        s = summary[case.name]
        impls = [s["impls"][name] for name in ("beanstalkm", other, "raw")]
        spreads = "/".join(f"±{i['spread'] * 100:.0f}" for i in impls) + "%"
        cpu = " / ".join(f"{i['cpu_us_per_op']:.1f}" for i in impls)
        print(
            f"{case.name:<17}{case.unit:>5}"
            + f"{impls[0]['ops_per_s']:>11,.0f}{impls[1]['ops_per_s']:>11,.0f}{impls[2]['ops_per_s']:>9,.0f}"
            + f"  {fmt_ratio(s['ratio_vs_other']):<24}{fmt_ratio(s['ratio_vs_raw']):<22}"
            + f"{cpu:<27}{s['cpu_vs_other']['median']:.2f}x{'':<8}{spreads}"
        )


def print_what(cases: tuple[Case, ...]) -> None:
    print()
    print("what each column runs:")
    for case in cases:
        print(f"  {case.name} ({case.title}):")
        for impl in IMPLS:
            name = case.other if impl == "other" else impl
            print(f"    {name:<11} {case.impls[impl].what}")


def check_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for target in TARGETS:
        if target.case not in summary:
            continue
        prefix = "cpu" if target.measure == "cpu" else "ratio"
        ratio = summary[target.case][f"{prefix}_vs_{'other' if target.versus == 'other' else 'raw'}"]
        low = target.measure == "cpu"  # CPU per op: at most the limit
        results.append(
            {
                "target": target.text,
                "case": target.case,
                "versus": summary[target.case]["other"] if target.versus == "other" else "raw",
                "measure": target.measure,
                "value": ratio["median"],
                "range": [ratio["min"], ratio["max"]],
                "unit": "x",
                "kind": "max" if low else "min",
                "limit": target.limit,
                "met": ratio["median"] <= target.limit if low else ratio["median"] >= target.limit,
            }
        )
    return results


def describe(target: dict[str, Any]) -> str:
    """One target's line: met or MISSED, what, the value and the limit (the shape memory.py uses too)."""
    mark = "pass" if target["met"] else "FAIL"
    unit, limit = target["unit"], target["limit"]
    value = f"{target['value']:+,} KiB" if unit == "KiB" else f"{target['value']:.3f}x"
    need = f"{'>=' if target['kind'] == 'min' else '<='} {limit:,}{' KiB' if unit == 'KiB' else 'x'}"
    extra = f"  rounds {target['range'][0]:.2f}-{target['range'][1]:.2f}" if "range" in target else ""
    return f"  {mark} {target['target']:<70} {value:>10}  (needs {need}){extra}"


def print_targets(results: list[dict[str, Any]], regime: str) -> None:
    print()
    print(f"targets ({regime} regime{'' if regime == 'split' else '; the targets are stated for split'})")
    for target in results:
        print(describe(target))


def failed_target(text: str) -> dict[str, Any]:
    return {"target": text, "value": 0.0, "unit": "x", "kind": "min", "limit": 1.0, "met": False}


def run_memory(quick: bool) -> dict[str, Any] | None:
    """Run benchmarks/memory.py in its own process (so RSS figures are its children's own); its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "memory.json"
        cmd = [sys.executable, str(HERE / "memory.py"), "--json", str(out)] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, check=False)
        if done.returncode not in (0, 1) or not out.exists():
            print(f"memory benchmark failed (exit {done.returncode})", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        return result
