"""Several servers with one ``Cluster`` (``make demo``): three private beanstalkd servers, puts spread
over them, one SIGKILLed and restarted from its binlog, and the cluster carrying on and taking it back.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import Counter

import beanstalkm
from beanstalkm.testing import BeanstalkdServer


def say(text: str) -> None:
    print(f"  {text}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s %(levelname)s: %(message)s", stream=sys.stdout)
    with tempfile.TemporaryDirectory() as binlogs:
        servers = [BeanstalkdServer(binlog_dir=f"{binlogs}/{i}") for i in range(3)]
        for server in servers:
            server.start()
        urls = [f"beanstalk://{s.host}:{s.port}" for s in servers]
        print(f"three beanstalkd servers: {', '.join(urls)}")
        try:
            with (
                beanstalkm.Cluster(urls, timeout=5, backoff=0.2) as producer,
                beanstalkm.Cluster(urls, timeout=5) as worker,
            ):
                worker.watch("emails")
                print("\n1. Round-robin puts; each message remembers its server (ids collide across servers)")
                for n in range(3):
                    message = producer.put({"to": f"user{n}@example.org"}, tube="emails")
                    say(f"put #{n} -> {message.ref}")
                print("\n2. put_many groups by server and writes to all of them at once")
                sent = producer.put_many([{"n": i} for i in range(300)], tube="emails")
                say(f"{len(sent)} messages; per server: {dict(Counter(m.server for m in sent))}")
                print("\n3. A server dies: puts go to the others (never resent when their outcome is unknown)")
                servers[1].kill()
                placed = [producer.put({"n": i}, tube="emails").server for i in range(4)]
                say(f"placed on: {placed}")
                down = [h for h in producer.servers if not h.up]
                since = time.strftime("%X", time.localtime(down[0].since))
                say(f"down: {down[0].url} since {since}: {down[0].last_error}")
                print("\n4. It comes back with its binlog and rejoins after its backoff")
                servers[1].start()
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(h.up for h in producer.servers):
                    producer.put({"probe": True}, tube="emails")
                    time.sleep(0.1)
                say(f"all up: {all(h.up for h in producer.servers)}")
                print("\n5. The worker drains every server fairly; totals are typed")
                taken = 0
                while worker.reserve(timeout=0) is not None:
                    taken += 1
                stats = worker.stats()
                say(f"reserved {taken} (the restarted server's jobs included); ready left: {stats.current_jobs_ready}")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
