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
