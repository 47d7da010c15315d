"""What moto's EC2 lacks and ccdsl relies on, added to the moto server this process runs (tests, benchmarks and the
test-cloud tutorial start it in-process, ``ThreadedMotoServer``, so every client of it, subprocesses included, sees
the addition).

- DescribeInstances' ``client-token`` filter (EC2 API reference: "The idempotency token you provided when you
  launched the instance").  moto stores the token of every RunInstances but raises NotImplementedError for the
  filter, an HTTP 500.  ccdsl's terminate uses it to find what a launch whose answer was lost created.
"""

from __future__ import annotations


def add_client_token_filter() -> None:
    """Let moto's DescribeInstances filter on ``client-token`` (its instances keep ``client_token``)."""
    from moto.ec2 import utils

    utils.filter_dict_attribute_mapping.setdefault("client-token", "client_token")


# The first lines of a driver script that runs the smoke test (examples/aws_smoke.py) on moto in a child process:
# any connection to an address other than loopback fails the run, since moto's instance addresses are fake and
# must never be contacted.
LOOPBACK_ONLY = r"""
import socket

_connect = socket.socket.connect

def loopback_only(sock, address):  # a safety net: moto's addresses are never contacted
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
        raise AssertionError(f"the smoke test on moto tried to connect to {address[0]}")
    return _connect(sock, address)

socket.socket.connect = loopback_only
"""
