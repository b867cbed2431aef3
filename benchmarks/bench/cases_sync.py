"""The one-at-a-time sync cases (put, reserve, stats, list-tubes, the 1 MiB body): beanstalkm, greenstalk, raw."""

from __future__ import annotations

import json

import beanstalkm
from bench import greenstalk
from bench.env import PRIORITY, TO, TTR, Address, Env, Prepare, Prepared
from bench.wire import put_command, raw_open, recv_job, recv_line


def raw_put(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(command)
            recv_line(sock, b"INSERTED ")

    return run, raw.close


def raw_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)
    sock = raw.sock

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            recv_line(sock, b"DELETED")

    return run, raw.close


def raw_simple(command: bytes) -> Prepare:
    """A command answered ``OK <bytes>`` and a body (stats, list-tubes): the bytes read, not parsed."""

    def prepare(env: Env, tube: str, n: int) -> Prepared:
        raw = raw_open(env.addr)

        def run(k: int) -> None:
            for _ in range(k):
                raw.sock.sendall(command)
                header = raw.line()
                raw.body(int(header[3:]))

        return run, raw.close

    return prepare


def raw_big(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.big_addr, use=tube, watch=tube)
    sock, command = raw.sock, put_command(env.big_envelope)

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(command)
            recv_line(sock, b"INSERTED ")
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            recv_line(sock, b"DELETED")

    return run, raw.close


# -- greenstalk: as its user would (json.dumps per put, json.loads per reserve) -----------------------


def gs_put(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, use=tube)
    dumps = json.dumps

    def run(k: int) -> None:
        put = client.put
        for i in range(k):
            put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)

    return run, client.close


def gs_put_bytes(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, encoding=None, use=tube)  # bytes in, as conn.queue.put
    data = env.envelope

    def run(k: int) -> None:
        put = client.put
        for _ in range(k):
            put(data, PRIORITY, 0, TTR)

    return run, client.close


def gs_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, watch=tube)
    loads = json.loads

    def run(k: int) -> None:
        reserve, delete = client.reserve, client.delete
        for _ in range(k):
            job = reserve(0)
            loads(job.body)
            delete(job)

    return run, client.close


def gs_stats(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def run(k: int) -> None:
        for _ in range(k):
            client.stats()

    return run, client.close


def gs_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def run(k: int) -> None:
        for _ in range(k):
            client.tubes()

    return run, client.close


def gs_big(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.big_addr, use=tube, watch=tube)
    body = env.big_body

    def run(k: int) -> None:
        for _ in range(k):
            client.put(json.dumps(body), PRIORITY, 0, TTR)
            job = client.reserve(0)
            if json.loads(job.body) != body:
                raise RuntimeError("greenstalk: the 1 MiB body did not come back")
            client.delete(job)

    return run, client.close


# -- beanstalkm ---------------------------------------------------------------------------------------


def bsm_client(addr: Address, watch: str | None = None) -> beanstalkm.Client:
    client = beanstalkm.Client(addr[0], addr[1], validate=True)
    if watch is not None:
        client.watch(watch)
        client.ignore("default")
    return client


def bsm_put(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)

    def run(k: int) -> None:
        put = client.put
        for i in range(k):
            put({"n": i, "to": TO}, tube)

    return run, client.close


def bsm_queue_put(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)
    conn.queue.use(tube)
    data = env.envelope

    def run(k: int) -> None:
        put = conn.queue.put
        for _ in range(k):
            put(data)

    return run, conn.close


def bsm_reserve_drop(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        reserve = client.reserve
        for _ in range(k):
            if reserve(0, drop=True) is None:
                raise RuntimeError("reserve: tube ran dry")

    return run, client.close


def bsm_reserve_keep(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        reserve = client.reserve
        for _ in range(k):
            message = reserve(0, drop=False)
            if message is None:
                raise RuntimeError("reserve: tube ran dry")
            message.delete()

    return run, client.close


def bsm_stats(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def run(k: int) -> None:
        stats = conn.queue.stats
        for _ in range(k):
            stats()

    return run, conn.close


def bsm_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def run(k: int) -> None:
        list_tubes = conn.queue.list_tubes
        for _ in range(k):
            list_tubes()

    return run, conn.close


def bsm_big(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.big_addr, watch=tube)
    body = env.big_body

    def run(k: int) -> None:
        for _ in range(k):
            client.put(body, tube)
            message = client.reserve(0, drop=True)
            if message is None or message.body != body:
                raise RuntimeError("reserve: the 1 MiB body did not come back")

    return run, client.close
