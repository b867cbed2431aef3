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
    """A ratio a case must reach: beanstalkm / ``versus`` ("other": greenstalk or aiostalk; or "raw")."""

    case: str
    versus: str
    minimum: float
    text: str


TARGETS: tuple[Target, ...] = (
    Target("put", "other", 0.9, "Client.put >= 0.9x greenstalk put(json.dumps(body))"),
    Target("reserve_drop", "other", 0.9, "Client.reserve(drop=True) >= 0.9x greenstalk reserve+loads+delete"),
    Target("queue_put", "other", 0.95, "raw queue.put >= 0.95x greenstalk put (same bytes)"),
    Target("put_many", "other", 10.0, "put_many >= 10x greenstalk sequential put"),
    Target("put_many", "raw", 0.7, "put_many >= 0.7x the raw pipelined loop"),
    Target("reserve_many", "other", 10.0, "reserve_many(drop=True) >= 10x greenstalk reserve+loads+delete"),
    Target("worker", "other", 0.9, "Worker (no-op handler, 1 slot) >= 0.9x a greenstalk reserve/delete loop"),
)


def fmt_ratio(r: dict[str, float]) -> str:
    return f"{r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]"


def print_table(summary: dict[str, Any], cases: tuple[Case, ...], other: str) -> None:
    rows = [c for c in cases if c.other == other]
    if not rows:
        return
    head = (
        f"{'case':<14}{'unit':>6}{'beanstalkm':>12}{other:>12}{'raw':>12}   "
        f"{'vs ' + other + ' [range]':<25}{'vs raw [range]':<25}spread (bsm/{other[:5]}/raw)"
    )
    print()
    print(head)
    print("-" * len(head))
    for case in rows:
        s = summary[case.name]
        impls = [s["impls"][name] for name in ("beanstalkm", other, "raw")]
        spreads = "/".join(f"±{i['spread'] * 100:.0f}" for i in impls) + "%"
        print(
            f"{case.name:<14}{case.unit:>6}"
            + "".join(f"{i['ops_per_s']:>12,.0f}" for i in impls)
            + f"   {fmt_ratio(s['ratio_vs_other']):<25}{fmt_ratio(s['ratio_vs_raw']):<25}{spreads}"
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
        ratio = summary[target.case]["ratio_vs_other" if target.versus == "other" else "ratio_vs_raw"]
        results.append(
            {
                "target": target.text,
                "case": target.case,
                "versus": summary[target.case]["other"] if target.versus == "other" else "raw",
                "value": ratio["median"],
                "range": [ratio["min"], ratio["max"]],
                "unit": "x",
                "kind": "min",
                "limit": target.minimum,
                "met": ratio["median"] >= target.minimum,
            }
        )
    return results


def describe(target: dict[str, Any]) -> str:
    """One target's line: met or MISSED, what, the value and the limit (the shape memory.py uses too)."""
    mark = "met   " if target["met"] else "MISSED"
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
