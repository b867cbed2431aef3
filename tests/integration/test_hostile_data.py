"""Hostile data over real sockets, in both flavours.

* A hostile producer: jobs nested close to the recursion limit, stored in a
  real beanstalkd, reserved (``reserve``, ``reserve_many``) and peeked. Each is
  a message or an ``InvalidEnvelope`` carrying the job, which stays reserved;
  never an untyped exception. How deep a value Python can decode, show or
  validate depends on how deep in the stack that runs (the asyncio flavour
  decodes on the loop's thread), so the jobs cover a range of depths, one
  apart, around the deepest one that decodes.
* A hostile server (a small fake one: beanstalkd sends none of this): an
  alias bomb, YAML nested 600 deep, a stats integer of 5,000 digits, a reply
  announcing a 1 GiB body. Each is a ``ProtocolError`` (or, for a body that
  never comes, the connection's ``SocketError``) with a bounded message, at
  a bounded cost in memory (``tracemalloc``, which sees every thread).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from beanstalkm import BatchFailed, Client, Connection, InvalidEnvelope, Message, ProtocolError, SocketError
from beanstalkm.testing import BeanstalkdServer

from ._fake import PATIENCE, FakeServer
from ._flavours import ClientFactory, ConnectionFactory, is_message

PeakMemory = Callable[[], AbstractContextManager[list[int]]]
"""The ``peak_memory`` fixture (tests/conftest.py)."""

MIB = 1 << 20
MESSAGE_MAX = 1000  # no error message may be longer than this
SPAN = 220  # the depths covered, below the deepest that decodes here


def deepest_decodable() -> int:
    """The deepest JSON nesting ``json.loads`` decodes when called from here."""
    low, high = 1, 5000
    while low < high:
        mid = (low + high + 1) // 2
        try:
            json.loads("[" * mid + "]" * mid)
        except RecursionError:
            high = mid - 1
        else:
            low = mid
    return low


def poison_jobs(where: str) -> list[bytes]:
    """Envelopes with a value nested at every depth of a range around the deepest that decodes."""
    top = deepest_decodable() + 10
    jobs = []
    for depth in range(top - SPAN, top):
        deep = b"[" * depth + b"]" * depth
        if where == "created":
            fields = b'"created":%b,"sender":{"host":"h"}' % deep
        elif where == "sender":
            fields = b'"created":1,"sender":{"host":%b}' % deep
        else:  # errors: not checked without validation, and converted to text
            fields = b'"created":1,"sender":{"host":"h"},"errors":[%b]' % deep
        jobs.append(b'{"@context":"message","body":1,%b,"token":"t"}' % fields)
    return jobs


@pytest.fixture
def observer(server: BeanstalkdServer, make_connection: ConnectionFactory) -> Iterator[Connection]:
    with make_connection(server.host, server.port, timeout=10) as c:
        yield c


def _check_outcome(outcome: object, raw: bytes, observer: Connection, validate: bool) -> int:
    """A message (then deleted) or an InvalidEnvelope carrying the job, still reserved (then deleted)."""
    if isinstance(outcome, InvalidEnvelope):
        assert validate, "without validation nothing is an invalid envelope"
        message = outcome.message
        assert is_message(message) and message.raw == raw and message.reserved
        assert len(str(outcome)) <= MESSAGE_MAX
        assert observer.queue.stats_job(message.uid).state == "reserved"
        _use(message)
        message.delete()
        return 1
    assert is_message(outcome), f"neither a message nor an InvalidEnvelope: {outcome!r:.200}"
    assert outcome.raw == raw
    _use(outcome)
    outcome.delete()
    return 0


def _use(message: Message) -> None:
    """What a consumer asks of a message: none of it may raise."""
    assert isinstance(str(message), str) and isinstance(repr(message), str)
    assert message.as_dict()["token"] == message.token


@pytest.mark.parametrize("validate", [True, False], ids=["validated", "unvalidated"])
@pytest.mark.parametrize("where", ["created", "sender", "errors"])
def test_poison_envelopes_reserve_as_messages_or_invalid_envelopes(
    server: BeanstalkdServer, make_client: ClientFactory, observer: Connection, where: str, validate: bool
) -> None:
    client = make_client(server.host, server.port, timeout=10, validate=validate)
    invalid = 0
    for raw in poison_jobs(where):
        observer.queue.put(raw)
        try:
            outcome: object = client.reserve(timeout=0, drop=False)
        except InvalidEnvelope as exc:
            outcome = exc
        invalid += _check_outcome(outcome, raw, observer, validate)
    assert client.reserve(timeout=0) is None  # every job was handed out, the connection in step
    if validate and where != "errors":
        assert invalid > 0  # most of them decoded, and failed validation


@pytest.mark.parametrize("validate", [True, False], ids=["validated", "unvalidated"])
def test_poison_envelopes_in_reserve_many(
    server: BeanstalkdServer, make_client: ClientFactory, observer: Connection, validate: bool
) -> None:
    client = make_client(server.host, server.port, timeout=10, validate=validate)
    jobs = poison_jobs("created") + poison_jobs("errors")
    for raw in jobs:
        observer.queue.put(raw)
    outcomes: list[object] = []
    while len(outcomes) < len(jobs):
        try:
            got: list[object] = list(client.reserve_many(50, timeout=0, drop=False))
        except BatchFailed as exc:
            got = [result for result in exc.results if result is not None]  # None: a reserve that timed out
        assert got, "jobs are left but none was reserved"
        outcomes += got
    for outcome, raw in zip(outcomes, jobs, strict=True):
        _check_outcome(outcome, raw, observer, validate)
    assert client.reserve(timeout=0) is None


def test_poison_envelopes_peeked(server: BeanstalkdServer, make_client: ClientFactory, observer: Connection) -> None:
    client = make_client(server.host, server.port, timeout=10, validate=True)
    for raw in poison_jobs("created"):
        job_id = observer.queue.put(raw)
        try:
            message = client.queue.peek(job_id)
        except InvalidEnvelope as exc:
            assert exc.message.uid == job_id and exc.message.raw == raw and not exc.message.reserved
        else:
            assert message is not None and message.uid == job_id and message.raw == raw
            _use(message)
        observer.queue.delete(job_id)


# -- a hostile server -------------------------------------------------------------------------------


@contextmanager
def scripted(replies: dict[bytes, bytes], *, close: bool = False) -> Iterator[FakeServer]:
    """A fake server answering each command from ``replies``, by its first word, as the bytes are
    (``UNKNOWN_COMMAND`` for one not there); with ``close``, the connection is closed after each answer."""

    def answer(line: str, body: bytes | None) -> bytes:
        return replies.get(line.split(" ", 1)[0].encode(), b"UNKNOWN_COMMAND\r\n")

    fake = FakeServer(answer, close_after=close)
    try:
        yield fake
    finally:
        fake.close()


def _ok(body: bytes) -> bytes:
    return b"OK %d\r\n%b\r\n" % (len(body), body)


def alias_bomb() -> bytes:
    """The review's list-tubes body: nine lines of nine aliases each, 9 ** 9 names once expanded."""
    lines = [b"---", b"- &a0 [x,x,x,x,x,x,x,x,x]"]
    lines += [b"- &a%d [" % i + b",".join([b"*a%d" % (i - 1)] * 9) + b"]" for i in range(1, 9)]
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    "body",
    [alias_bomb(), b"---\n" + b"[" * 600 + b"]" * 600 + b"\n", b"---\n- &a x\n- *a\n"],
    ids=["alias-bomb", "nested-600", "alias"],
)
def test_a_hostile_tube_list_is_a_protocol_error_at_bounded_cost(
    make_client: ClientFactory, body: bytes, peak_memory: PeakMemory
) -> None:
    with scripted({b"list-tubes": _ok(body)}) as fake:
        client = make_client("127.0.0.1", fake.port, timeout=PATIENCE)
        with peak_memory() as peak, pytest.raises(ProtocolError) as info:
            client.queue.list_tubes()
        assert len(str(info.value)) <= MESSAGE_MAX
        assert peak[0] < 8 * MIB
        client.close()


def test_a_stats_integer_of_5000_digits_is_a_protocol_error(
    server: BeanstalkdServer, make_client: ClientFactory, observer: Connection
) -> None:
    real = observer.queue.stats_yaml().encode()  # what beanstalkd sends, then one counter made huge
    lines = [b"cmd-put: " + b"9" * 5000 if line.startswith(b"cmd-put: ") else line for line in real.split(b"\n")]
    with scripted({b"stats": _ok(b"\n".join(lines))}) as fake:
        client = make_client("127.0.0.1", fake.port, timeout=PATIENCE)
        with pytest.raises(ProtocolError, match="'cmd-put'") as info:
            client.queue.stats()
        assert len(str(info.value)) <= MESSAGE_MAX
        client.close()


@pytest.mark.parametrize("command", [b"stats", b"list-tubes"])
def test_a_yaml_body_announced_at_1_gib_is_refused_before_reading_it(
    make_client: ClientFactory, command: bytes, peak_memory: PeakMemory
) -> None:
    """The server announces the body and sends nothing more, keeping the connection open: the
    client refuses it at once (not a timeout waiting for it)."""
    with scripted({command: b"OK 1073741824\r\n"}) as fake:
        client = make_client("127.0.0.1", fake.port, timeout=30)
        call = client.queue.stats if command == b"stats" else client.queue.list_tubes
        with peak_memory() as peak, pytest.raises(ProtocolError, match="YAML"):
            call()
        assert peak[0] < 8 * MIB
        client.close()


@pytest.mark.parametrize("command", [b"reserve-with-timeout", b"peek"])
def test_a_job_announced_at_1_gib_costs_only_what_arrived(
    make_client: ClientFactory, command: bytes, peak_memory: PeakMemory
) -> None:
    """512 KiB of a job announced at 1 GiB arrive, then the server hangs up."""
    status = b"RESERVED" if command == b"reserve-with-timeout" else b"FOUND"
    sent = b"%b 7 1073741824\r\n" % status + b"x" * (512 * 1024)
    with scripted({command: sent}, close=True) as fake:
        client = make_client("127.0.0.1", fake.port, timeout=PATIENCE)
        with peak_memory() as peak, pytest.raises(SocketError):
            if command == b"peek":
                client.queue.peek(7)
            else:
                client.reserve(timeout=0)
        assert peak[0] < 16 * MIB, f"{peak[0]} bytes allocated for 512 KiB that arrived"
        client.close()


def test_the_client_still_works_after_a_hostile_reply(
    server: BeanstalkdServer, make_client: ClientFactory, observer: Connection
) -> None:
    """A poison job leaves the connection in step: the next job reserves as usual."""
    client: Client = make_client(server.host, server.port, timeout=10, validate=True)
    observer.queue.put(poison_jobs("created")[SPAN // 2])
    with pytest.raises(InvalidEnvelope) as info:
        client.reserve(timeout=0)
    info.value.message.bury()
    observer.queue.put(b'"fine"')
    message = client.reserve(timeout=0)
    assert message is not None and message.body == "fine" and message.deleted
