"""The batch cases (``put_many``, ``reserve_many`` of ``BATCH``): beanstalkm and the raw pipelined loop."""

from __future__ import annotations

from bench.cases_sync import bsm_client
from bench.env import BATCH, TO, Env, Prepared
from bench.wire import put_command, raw_open, recv_replies


def raw_put_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            sock.sendall(command * BATCH)
            recv_replies(sock, BATCH, b"INSERTED ")

    return run, raw.close


def raw_reserve_delete_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            ids = raw.reserve_batch(BATCH)
            if len(ids) != BATCH:
                raise RuntimeError("raw pipelined reserve: tube ran dry")
            raw.delete_batch(ids)

    return run, raw.close


def bsm_put_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)

    def run(k: int) -> None:
        for start in range(0, k, BATCH):
            client.put_many([{"n": start + j, "to": TO} for j in range(BATCH)], tube)

    return run, client.close


def bsm_reserve_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            if len(client.reserve_many(BATCH, 0, drop=True)) != BATCH:
                raise RuntimeError("reserve_many: tube ran dry")

    return run, client.close
