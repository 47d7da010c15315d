"""A stand-in for paramiko's channel and the connection pool around it, as ``workdir.setup_remote`` reads them.

It hands out ``total`` bytes of a repeated ``unit`` in chunks of at most 64 KiB, made as they are read (so whoever
uses it holds none of it), then exit status 0.  Shared by tests/test_output_lines.py, which checks what the reader
passes on, and benchmarks/bench_output.py, which times the reading alone, without SSH's own cost.
"""

from __future__ import annotations

from typing import Any

from ccdsl.executor.lines import CHUNK


class FakeChannel:
    def __init__(self, total: int, unit: bytes) -> None:
        self.total, self.sent, self.closed = total, 0, False
        self.unit = unit

    def set_combine_stderr(self, _: bool) -> None:
        pass

    def exec_command(self, _: str) -> None:
        pass

    def recv_ready(self) -> bool:
        return self.sent < self.total

    def recv(self, n: int) -> bytes:
        n = min(n, self.total - self.sent, CHUNK)
        start = self.sent % len(self.unit)
        data = (self.unit[start:] + self.unit)[:n]
        self.sent += n
        return data

    def exit_status_ready(self) -> bool:
        return self.sent >= self.total

    def recv_exit_status(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class FakePool:
    """``ssh.Connections`` as setup_remote uses it: ``get(node)`` gives a client whose transport opens ``chan``."""

    def __init__(self, chan: FakeChannel) -> None:
        self.chan = chan
        self.options = type("Options", (), {"connect_timeout": 5.0})()

    def get(self, node: Any) -> Any:
        chan = self.chan

        class Client:
            def get_transport(self) -> Any:
                return type("Transport", (), {"open_session": lambda self, timeout: chan})()
        return Client()
