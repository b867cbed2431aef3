"""``import beanstalkm`` is cheap: neither jsonschema nor Jinja2 is imported
until validation first needs it (Jinja2: never at run time), and validation
still refuses an invalid envelope when it is used."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from beanstalkm.testing import BeanstalkdServer

HEAVY = ("jsonschema", "jinja2")

# Runs in a fresh interpreter, so that nothing pytest or other tests imported counts.
CHILD = textwrap.dedent(
    """
    import json, sys

    HEAVY = ("jsonschema", "jinja2")

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

    import beanstalkm

    report = {"after_import": loaded()}
    port = int(sys.argv[1])
    with beanstalkm.Client("127.0.0.1", port, validate=True) as client:
        client.watch("imports")
        client.ignore("default")
        client.put({"hello": "world"}, tube="imports")
        message = client.reserve(timeout=5, drop=True)
        report["valid_body"] = None if message is None else message.body
        report["after_valid_reserve"] = loaded()

        client.queue.use("imports")
        invalid = b'{"@context":"message","body":1}'
        client.queue.put(invalid)
        try:
            client.reserve(timeout=5, drop=True)
        except beanstalkm.InvalidEnvelope as exc:
            report["invalid"] = {
                "reason": exc.reason,
                "raw": exc.message.raw.decode(),
                "state": client.queue.stats_job(exc.message.uid).state,
            }
            exc.message.delete()
        else:
            report["invalid"] = None
        report["after_invalid_reserve"] = loaded()
    print(json.dumps(report))
    """
)


def _child(server: BeanstalkdServer) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(server.port)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_import_loads_neither_jsonschema_nor_jinja2(server: BeanstalkdServer) -> None:
    report = _child(server)
    assert report["after_import"] == [], f"`import beanstalkm` imported {report['after_import']}"
    # A valid envelope may be checked without jsonschema; Jinja2 is for the generator only.
    assert report["valid_body"] == {"hello": "world"}
    assert not any(m.startswith("jinja2") for m in report["after_valid_reserve"])


def test_validation_still_refuses_an_invalid_envelope(server: BeanstalkdServer) -> None:
    report = _child(server)
    invalid = report["invalid"]
    assert invalid is not None, "an invalid envelope was accepted with validate=True"
    assert isinstance(invalid["reason"], str) and invalid["reason"]
    assert invalid["raw"] == '{"@context":"message","body":1}'
    assert invalid["state"] == "reserved"  # never deleted, whatever drop says
    assert not any(m.startswith("jinja2") for m in report["after_invalid_reserve"])
