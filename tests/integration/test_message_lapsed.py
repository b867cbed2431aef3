"""A message whose reservation is over without its knowing the job is gone: the connection that
reserved it closed (beanstalkd released the job, which may be reserved again, by the same client), or
the job no longer exists. ``release``, ``bury`` and ``touch`` then raise ``NotFound`` and leave the job
alone: they never act on a reservation another message holds. Both flavours, real beanstalkd."""

from __future__ import annotations

import pytest

from beanstalkm import DEFAULT_TUBE, BatchFailed, Client, Connection, Message, NotFound


def _sent(observer: Connection, command: str) -> int:
    count: int = getattr(observer.queue.stats(), f"cmd_{command}")
    return count


@pytest.mark.parametrize("verb", ["release", "bury", "touch"])
def test_a_message_reserved_on_a_closed_connection_leaves_the_new_reservation_alone(
    client: Client, observer: Connection, verb: str
) -> None:
    client.watch(DEFAULT_TUBE)
    client.put("once")
    old = client.reserve(timeout=0, drop=False)
    assert old is not None and old.reserved
    client.reconnect()  # beanstalkd released the job with the old connection
    assert old.reserved is False
    new = client.reserve(timeout=0, drop=False)  # the same job, reserved again on the new connection
    assert new is not None and new.uid == old.uid and new.reserved
    before = _sent(observer, verb)

    with pytest.raises(NotFound) as info:
        getattr(old, verb)()

    assert "closed" in str(info.value) and "not sent" in str(info.value)
    assert info.value.args[1] == "NOT_FOUND"
    assert _sent(observer, verb) == before  # not sent: beanstalkd would have applied it to `new`
    assert old.reserved is False and old.lease_lost is True
    job = observer.queue.stats_job(new.uid)
    assert job.state == "reserved" and job.releases == 0 and job.buries == 0
    assert new.reserved
    new.release()  # the reservation that is held can still be settled
    assert observer.queue.stats_job(new.uid).state == "ready"


def _two_reserved(client: Client) -> tuple[Message, Message]:
    """Two jobs put and reserved (``drop=False``) by ``client``."""
    client.watch(DEFAULT_TUBE)
    for _ in range(2):
        client.put("job")
    first = client.reserve(timeout=0, drop=False)
    second = client.reserve(timeout=0, drop=False)
    assert first is not None and second is not None
    return first, second


def test_release_and_bury_of_a_job_gone_meanwhile_mark_the_message_lost(client: Client) -> None:
    """The stats-job that learns the job's own priority answers NOT_FOUND (the job was deleted meanwhile,
    here through the queue layer of the same connection): the message is then no longer reserved, as
    when the release or bury itself is answered so."""
    released, buried = _two_reserved(client)
    for m in (released, buried):
        client.queue.delete(m.uid)

    with pytest.raises(NotFound):
        released.release()
    with pytest.raises(NotFound):
        buried.bury()

    for m in (released, buried):
        assert m.reserved is False and m.lease_lost is True


def test_delete_many_marks_a_message_the_server_answered_not_found_for_lost(client: Client) -> None:
    """As ``message.delete()`` does: an item of ``delete_many`` answered NOT_FOUND is no longer reserved."""
    kept, gone = _two_reserved(client)
    client.queue.delete(gone.uid)  # deleted behind the message's back

    with pytest.raises(BatchFailed) as info:
        client.delete_many([kept, gone])

    assert info.value.results[0] is None and isinstance(info.value.results[1], NotFound)
    assert kept.deleted and not kept.reserved
    assert not gone.deleted and gone.reserved is False and gone.lease_lost is True
