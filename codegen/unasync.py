"""Derive the sync flavour from the asyncio source (``src/beanstalkm/_async`` -> ``src/beanstalkm/_sync``).

The asyncio code is the only hand-written source of every flavoured class; this
pass turns it into the sync code, as httpcore's ``unasync`` and psycopg's
``async_to_sync`` do. It works on Python tokens, so a name inside a longer
name, a string or a comment is never hit by accident:

1. **Marked blocks** (the few real differences), resolved line by line first::

       if ASYNC:
           ...   # kept in the asyncio source only
       else:
           ...   # the sync flavour's version, dedented into the derived file

   ``if not ASYNC:`` marks a block with no asyncio counterpart. ``ASYNC`` is
   ``beanstalkm._async.ASYNC`` (True); mypy is told it is always true, so it
   checks only the asyncio branch of the source and the derived file checks
   the other.
2. **Keywords**: ``await`` goes; ``async def`` / ``async with`` / ``async for``
   lose ``async``.
3. **Names** (identifiers, and dotted module paths): ``NAMES`` below.
4. **Text** (strings and comments): the names of ``NAMES`` as whole words, the
   phrases of ``PHRASES``, and each file's ``REQUIRED`` substitutions, which
   must each apply: one that no longer matches its source fails the pass, so
   a changed docstring cannot silently keep the other flavour's words.

The module docstring keeps its first line and says where the file comes from.
The result is formatted and its imports sorted (unused ones dropped) by the
project's pinned ruff, then stamped with a header naming the source and its
sha256.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "src" / "beanstalkm" / "_async"
DERIVED_DIR = ROOT / "src" / "beanstalkm" / "_sync"

SOURCES = ("client.py", "cluster.py", "connection.py", "failures.py", "message.py", "worker.py")
"""The flavoured files under ``_async/`` (the rest of that folder, such as the pool, is asyncio only)."""

NAMES: dict[str, str] = {
    "AsyncClient": "Client",
    "AsyncCluster": "Cluster",
    "AsyncConnection": "Connection",
    "AsyncIterator": "Iterator",
    "AsyncMessage": "Message",
    "AsyncPipeline": "Pipeline",
    "AsyncQueue": "Queue",
    "AsyncWorker": "Worker",
    "StreamTransport": "SocketTransport",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "_async": "_sync",
    "aqueue": "queue",
    "asynccontextmanager": "contextmanager",
    "streams": "sockets",
    "tasks": "threads",
}

PHRASES: tuple[tuple[str, str], ...] = (
    ("``async with ", "``with "),
    ("``await ", "``"),
)
"""Substitutions in text that apply wherever they match (none need to)."""

REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "connection.py": (
        ("An asyncio connection to one beanstalkd", "A connection to one beanstalkd"),
        (
            "Created unconnected: ``async with`` (or ``await conn.connect()``, or the\n    first command) connects.",
            "It connects at once (a refused connection raises ``SocketError`` naming\n    the address).",
        ),
        (
            "Commands from concurrent tasks are auto-pipelined: those that change no\n"
            "    connection state (``put`` to the tube in force, ``delete``, ``release``,\n"
            "    ``stats``, a reserve that does not wait, ...) are written together, one\n"
            "    write per event-loop turn, and their replies matched to them in order. A\n"
            "    task cancelled meanwhile costs nothing: its command is not sent if it was\n"
            "    not yet written, else its reply is read and dropped (a job a reserve took\n"
            "    goes back to ready), and the stream stays in step. Everything else (a\n"
            "    reserve that waits, ``use``, ``watch``, a batch, ``reserve(drop=True)``, a\n"
            "    put that needs a ``use`` first) holds the connection alone from its write\n"
            "    to its last reply, once the replies in flight are in. A blocking reserve\n"
            "    holds it as long as it waits, so give each consumer its own (``AsyncPool``\n"
            "    does).",
            "One connection may be shared by threads: each command (or batch) holds a\n"
            "    lock from its write to its last reply, so replies never cross. A blocking\n"
            "    reserve holds it too, so give each consuming thread its own connection.",
        ),
        ("A command in progress elsewhere", "A command in progress in another thread"),
        ("(it gets a ``SocketError``;", "(its thread gets a ``SocketError``;"),
        ("``async with conn.pipeline() as p: ...``", "``with conn.pipeline() as p: ...; p.execute()``"),
    ),
    "message.py": (
        (
            "A message bound to a connection; its lifecycle methods are awaitable.\n\n"
            "    ``priority``, ``delay`` and ``ttr`` are None for a received job until\n"
            "    known (``await message.stats()`` learns them); ``release()`` and\n"
            "    ``bury()`` still keep the job's own priority by default.",
            "A message bound to a :class:`~beanstalkm.Connection`.\n\n"
            "    ``priority``, ``delay`` and ``ttr`` are asked of the server once, when\n"
            "    first read, for a received job; ``release()`` and ``bury()`` keep the\n"
            "    job's own priority by default.",
        ),
    ),
    "client.py": (),
    "failures.py": (),
    "worker.py": (
        (
            "In the asyncio flavour call\n"
            "        it from the worker's event loop; in the sync flavour from any thread or a signal handler.",
            "Call it from any thread or a\n        signal handler.",
        ),
        ("a new\n    unconnected ``AsyncClient`` per slot", "a new\n    connected ``Client`` per slot"),
    ),
}

_WORDS = re.compile(r"\b(" + "|".join(sorted(map(re.escape, NAMES), key=len, reverse=True)) + r")\b")
_BLOCK = re.compile(r"^(?P<indent> *)(?P<head>if ASYNC:|if not ASYNC:)$")
_ELSE = re.compile(r"^(?P<indent> *)else:$")


class UnasyncError(Exception):
    """The source cannot be derived as it stands (a stale substitution, a malformed block)."""


def derive_all(source_dir: Path = SOURCE_DIR) -> dict[str, str]:
    """Every derived file's text, by name (the package's ``__init__.py`` included)."""
    files = {"__init__.py": PACKAGE_INIT}
    files.update((name, derive(source_dir / name)) for name in SOURCES)
    return files


PACKAGE_INIT = (
    "# Derived by `python -m codegen` from src/beanstalkm/_async/. DO NOT EDIT; edit the source and run "
    "`make generate`.\n"
    '"""The sync flavour: derived from the asyncio source (``beanstalkm._async``) by ``python -m codegen``."""\n'
)


def derive(path: Path) -> str:
    """The sync flavour of the asyncio source file at ``path``."""
    raw = path.read_bytes()
    source = raw.decode("utf-8")
    required = REQUIRED.get(path.name, ())
    text = _resolve_blocks(source, path.name)
    text, used = _tokens(text, required)
    unused = [old for old, _ in required if old not in used]
    if unused:
        raise UnasyncError(f"{path.name}: substitution no longer applies: {unused[0]!r}")
    text = _ruff(["check", "--fix", "--select", "I,F401", "--quiet", "--exit-zero"], text, path.name)
    text = _ruff(["format"], text, path.name)
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    digest = hashlib.sha256(raw).hexdigest()
    header = (
        f"# Derived by `python -m codegen` from {rel} (sha256 {digest}). DO NOT EDIT; "
        "edit the source and run `make generate`.\n"
    )
    return header + text


def _resolve_blocks(source: str, name: str) -> str:
    """Apply the marked blocks: drop the asyncio-only bodies, dedent the sync ones."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _BLOCK.match(lines[i].rstrip("\n"))
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent, head = len(match["indent"]), match["head"]
        body, i = _body(lines, i + 1, indent, name)
        if head == "if not ASYNC:":
            out += _dedent(body)
            continue
        # `if ASYNC:`: its body goes; an `else:` after it comes in, dedented
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        following = _ELSE.match(lines[j].rstrip("\n")) if j < len(lines) else None
        if following is not None and len(following["indent"]) == indent:
            body, i = _body(lines, j + 1, indent, name)
            out += _dedent(body)
    return "".join(out)


def _body(lines: list[str], start: int, indent: int, name: str) -> tuple[list[str], int]:
    """The lines of the block starting at ``start`` (indented deeper than ``indent``), and where it ends."""
    end = start
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip(" ")) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():  # trailing blank lines belong to what follows
        end -= 1
    if end == start:
        raise UnasyncError(f"{name}:{start}: a marked block with no body")
    return lines[start:end], end


def _dedent(body: list[str]) -> list[str]:
    return [line[4:] if line.startswith("    ") else line for line in body]


def _tokens(text: str, required: tuple[tuple[str, str], ...]) -> tuple[str, set[str]]:
    """Apply the keyword, name and text substitutions; which required ones applied."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in ``text``
    used: set[str] = set()
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    docstring = _module_docstring(tokens)
    skip_to = -1  # the last token of an f-string already taken whole
    for index, tok in enumerate(tokens):
        if index <= skip_to:
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        if tok.type == FSTRING_START:  # Python 3.12+ splits an f-string into tokens: take it whole, as 3.11 does
            skip_to = _fstring_end(tokens, index)
            last = tokens[skip_to]
            end = offsets[last.end[0] - 1] + last.end[1]
            tok = tok._replace(type=tokenize.STRING, string=text[start:end])
        if tok.type == tokenize.NAME:
            if tok.string == "await" or (tok.string == "async" and tokens[index + 1].string in {"def", "with", "for"}):
                following = tokens[index + 1]
                edits.append((start, offsets[following.start[0] - 1] + following.start[1], ""))
            elif tok.string in NAMES:
                edits.append((start, end, NAMES[tok.string]))
        elif tok.type in (tokenize.STRING, tokenize.COMMENT):
            if tok is docstring:
                edits.append((start, end, _derived_docstring(tok.string)))
                continue
            new = tok.string
            for old, replacement in required:
                if old in new:
                    new = new.replace(old, replacement)
                    used.add(old)
            for old, replacement in PHRASES:
                new = new.replace(old, replacement)
            new = _WORDS.sub(lambda m: NAMES[m.group(1)], new)
            if new != tok.string:
                edits.append((start, end, new))
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return text, used


FSTRING_START: int | None = getattr(tokenize, "FSTRING_START", None)
"""The token that opens an f-string on Python 3.12+ (None before: an f-string is one STRING token)."""


def _fstring_end(tokens: list[tokenize.TokenInfo], index: int) -> int:
    """The index of the FSTRING_END that closes the f-string opened at ``index`` (nested ones counted)."""
    depth = 0
    for i in range(index, len(tokens)):
        kind = tokenize.tok_name[tokens[i].type]
        if kind == "FSTRING_START":
            depth += 1
        elif kind == "FSTRING_END":
            depth -= 1
            if depth == 0:
                return i
    raise UnasyncError(f"an f-string opened at line {tokens[index].start[0]} is not closed")


def _module_docstring(tokens: list[tokenize.TokenInfo]) -> tokenize.TokenInfo | None:
    for tok in tokens:
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
            continue
        return tok if tok.type == tokenize.STRING else None
    return None


def _derived_docstring(literal: str) -> str:
    first = literal.strip('"').splitlines()[0]
    return f'"""{first}\n\nThe sync flavour, derived from the asyncio source by ``python -m codegen``.\n"""'


def _ruff(args: list[str], source: str, filename: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", f"src/beanstalkm/_sync/{filename}", "-"],
        input=source.encode(),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise UnasyncError(f"ruff {args[0]} failed on {filename}:\n{proc.stderr.decode()}\n--- source ---\n{source}")
    return proc.stdout.decode()
