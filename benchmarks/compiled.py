"""Build the hot path with mypyc into a separate directory, to measure it against the pure tree.

Usage::

    PYTHONPATH=src python benchmarks/compiled.py build [--out DIR] [--modules SET]
    PYTHONPATH=DIR:src python benchmarks/hot_path.py ...     # then measure with DIR first on the path
    PYTHONPATH=DIR:src python benchmarks/compiled.py status  # which modules are loaded compiled
    python benchmarks/compiled.py compare PURE.json COMPILED.json

``build`` copies ``src/beanstalkm`` into ``DIR`` (default ``build/mypyc``, git-ignored), applies the few
build-time edits listed in ``EDITS`` to the copy only (the source tree stays pure Python and unchanged),
and runs mypyc over the modules of ``--modules`` (``MODULES``' keys); the ``.so`` files land beside
the copied ``.py`` files in ``DIR``. ``status`` prints which modules the importable ``beanstalkm`` has
compiled; ``compare A B ...`` prints the sync and async cases of ``benchmarks/run.py --out`` files side by
side (beanstalkm's client CPU per op and its ratios). Not part of ``make bench`` or ``make test``: the
feasibility study of docs/compiled.md, which found no material gain (the default install is pure Python).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "beanstalkm"

LEAF = [
    "_core/reader.py",
    "_core/session.py",
    "_core/requests.py",
    "_core/checks.py",
    "_core/decoders.py",
    "_core/envelope.py",
    "_generated/commands.py",
    "_generated/effects.py",
    "_generated/errors.py",
    "_generated/envelope_check.py",
]
"""Modules of functions and leaf classes: nothing in the package subclasses their classes."""

CLASSES = [
    "_core/base.py",
    "_core/message.py",
    "_generated/queue.py",
    "_transport/sockets.py",
    "_sync/connection.py",
]
"""The connection, message, queue and transport classes: subclassed by interpreted code (``Client``,
``TLSSocketTransport``'s users, tests), so built with ``allow_interpreted_subclasses``."""

STATS = ["_generated/stats.py", "_core/yaml.py"]
"""The stats decoders: the dataclasses stay ordinary classes (``PLAIN``), their functions compiled."""

CLIENT = ["_core/batches.py", "_sync/client.py"]
"""``Client`` made single-base (``_single_base``): it builds, and crashes (SIGSEGV) in the native
``ConnectionBase.__init__`` on the first ``Client(...)``; kept to reproduce that (docs/compiled.md)."""

MODULES = {"leaf": LEAF, "classes": LEAF + CLASSES, "all": LEAF + CLASSES + STATS, "client": LEAF + CLASSES + CLIENT}

_ALLOW = "@mypyc_attr(allow_interpreted_subclasses=True)\n"
_PLAIN = "@mypyc_attr(native_class=False)\n"

PLAIN = {"_Setting", "KnownSetting", "AskedSetting", "ServerStats", "TubeStats", "JobStats"}
"""Classes kept ordinary Python classes in a compiled module: the settings are descriptors (a native
class cannot set its ``__doc__``); the stats are slotted dataclasses and mappings, which a native
class cannot be. ``_sync/message.py`` stays interpreted: ``Message`` holds them as class
attributes, which a native class cannot, and an ordinary class can only subclass a native one from
interpreted code."""
_IMPORT = "from mypy_extensions import mypyc_attr\n"

EDITS: dict[str, list[tuple[str, str]]] = {
    # mypyc refuses a function defined in both branches of a run-time test; sys.platform is decided by mypy
    "_transport/sockets.py": [
        ("import contextlib\n", "import contextlib\nimport sys\n"),
        ('if hasattr(select, "poll"):\n', 'if sys.platform != "win32":\n'),
    ],
    # a native function checks its defaults' types: the "not given" sentinel is an object, not a float
    "_core/base.py": [
        ("timeout: float | None = _UNSET,", "timeout: Any = _UNSET,"),
    ],
}
"""Build-time edits to the copy: (old, new) text, each of which must match."""


def _single_base(client: str, batches: str) -> str:
    """``Client`` with one base: mypyc refuses a native class of two (``ClientCore`` and ``Connection``,
    both native), so the copy's ``Client`` takes ``ClientCore.__call__`` (its one method) itself."""
    tree = ast.parse(batches)
    core = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ClientCore")
    call = next(n for n in core.body if isinstance(n, ast.FunctionDef) and n.name == "__call__")
    method = ast.get_source_segment(batches, call, padded=True) or ""
    method = method.replace(") -> M:", ") -> Message:")
    header = "class Client(ClientCore[Message], Connection):\n"
    if header not in client:
        raise SystemExit("_sync/client.py: the Client class line no longer matches")
    start = client.index(header)
    body = client.index('    """\n\n', start) + len('    """\n\n')
    client = client[:body] + "    " + method.strip() + "\n\n" + client[body:]
    client = client.replace(header, "class Client(Connection):\n")
    return client.replace(
        "from beanstalkm._core.batches import (\n", "from beanstalkm._core.batches import (\n    message_kwargs,\n", 1
    )


def _allow_subclasses(text: str) -> str:
    """Mark every top-level class ``allow_interpreted_subclasses`` (tests and users subclass them)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        if line.startswith("class "):
            name = line[len("class ") :].split("(")[0].split(":")[0]
            out.append(_PLAIN if name in PLAIN else _ALLOW)
        out.append(line)
    text = "".join(out)
    marker = "from __future__ import annotations\n"
    return text.replace(marker, marker + _IMPORT, 1)


def build(out: pathlib.Path, modules: list[str]) -> None:
    """Copy the package to ``out``, edit the copy, and compile ``modules`` there."""
    if out.resolve().is_relative_to(SRC.parent.resolve()):
        raise SystemExit(f"refusing to build into {out}: the source tree stays pure Python")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copytree(SRC, out / "beanstalkm", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name, edits in EDITS.items():
        path = out / "beanstalkm" / name
        text = path.read_text()
        for old, new in edits:
            if old not in text:
                raise SystemExit(f"{name}: build edit {old!r} no longer matches")
            text = text.replace(old, new)
        path.write_text(text)
    if "_sync/client.py" in modules:
        client = out / "beanstalkm" / "_sync" / "client.py"
        client.write_text(_single_base(client.read_text(), (SRC / "_core" / "batches.py").read_text()))
    for name in modules:
        if name in CLASSES + STATS + CLIENT:
            path = out / "beanstalkm" / name
            path.write_text(_allow_subclasses(path.read_text()))
    (out / "mypy.ini").write_text("[mypy]\nstrict = True\npython_version = 3.11\nalways_true = ASYNC\n")
    mypyc = pathlib.Path(sys.executable).with_name("mypyc")
    command = [str(mypyc), "--config-file", "mypy.ini", *(f"beanstalkm/{name}" for name in modules)]
    log = out / "build.log"
    with log.open("w") as stream:
        done = subprocess.run(command, cwd=out, stdout=stream, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        errors = [line for line in log.read_text().splitlines() if ": error:" in line]
        raise SystemExit("mypyc failed:\n" + "\n".join(errors or [f"see {log}"]))
    shutil.rmtree(out / "build", ignore_errors=True)
    print(f"compiled {len(modules)} modules into {out}; run with PYTHONPATH={out}{os.pathsep}src")


def status() -> None:
    """Which of the candidate modules the importable ``beanstalkm`` has compiled."""
    for name in dict.fromkeys(MODULES["all"] + CLIENT):
        module = "beanstalkm." + name.removesuffix(".py").replace("/", ".")
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        print(f"{module:40} {'compiled' if origin and origin.endswith('.so') else 'pure'}  {origin}")


def compare(files: list[pathlib.Path]) -> None:
    """Per case, from ``benchmarks/run.py --out`` files (say pure then compiled): beanstalkm's client CPU
    per op, its CPU and ops/s ratios to the peer (greenstalk or aiostalk) and to the raw loop."""
    runs = [(path.name, json.loads(path.read_text())["cases"]) for path in files]
    names = [name for name in runs[0][1] if all(name in cases for _, cases in runs)]
    head = ("bsm cpu us/op", 15), ("cpu vs peer", 13), ("cpu vs raw", 12), ("ops vs peer", 13), ("ops vs raw", 12)
    print(f"{'case':18}{'run':>10}" + "".join(f"{title:>{width}}" for title, width in head))
    for name in names:
        for label, cases in runs:
            case = cases[name]
            cpu = case["impls"]["beanstalkm"]["cpu_us_per_op"]
            ratios = [case[key]["median"] for key in ("cpu_vs_other", "cpu_vs_raw", "ratio_vs_other", "ratio_vs_raw")]
            cells = "".join(f"{ratio:>{width - 1}.3f}x" for ratio, (_, width) in zip(ratios, head[1:], strict=True))
            print(f"{name:18}{label:>10}{cpu:>15.1f}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "status", "compare"])
    parser.add_argument("results", nargs="*", type=pathlib.Path, help="compare: run.py --out files")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "build" / "mypyc")
    parser.add_argument("--modules", choices=sorted(MODULES), default="all")
    args = parser.parse_args()
    if args.action == "build":
        build(args.out, MODULES[args.modules])
    elif args.action == "compare":
        compare(args.results)
    else:
        status()


if __name__ == "__main__":
    main()
