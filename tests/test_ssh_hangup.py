"""A node that hangs up while ccdsl opens a channel: the message says what was lost, never an empty reason.

paramiko reports a dropped connection as ``EOFError()``, whose text is empty, and ``f"{exc or name}"`` printed that
empty text (an exception is always true).  The peer is paramiko's own SSH server on loopback, because a real sshd
cannot be made to hang up at one chosen moment: after authentication, when the client asks for a channel.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ccdsl.errors import ExecutionError
from ccdsl.executor import mpi, ssh
from ccdsl.executor.model import Node

paramiko = pytest.importorskip("paramiko")


class _HangUpAtChannelOpen(paramiko.ServerInterface):
    """Takes any key; when asked for a channel, shuts the connection down before answering."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: object) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        self.conn.shutdown(socket.SHUT_RDWR)
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


@pytest.fixture()
def hang_up_node(tmp_path) -> Iterator[Node]:
    """A node on 127.0.0.1 whose SSH server hangs up at the first channel of each connection."""
    key_path = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key_path))
    listener = socket.create_server(("127.0.0.1", 0))
    transports = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener closed: the test is over
            transport = paramiko.Transport(conn)
            transport.add_server_key(paramiko.ECDSAKey.generate())
            transports.append(transport)
            transport.start_server(server=_HangUpAtChannelOpen(conn))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield Node(0, "worker", "hangs-up", "test", address="127.0.0.1", port=listener.getsockname()[1],
               user="ccdsl", key_path=str(key_path))
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
    server.join()
    listener.close()
    for transport in transports:
        transport.close()


def _options(tmp_path) -> ssh.SshOptions:
    return ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)


def test_a_connection_lost_before_the_command_names_what_was_lost(hang_up_node, tmp_path):
    with ssh.Connections(_options(tmp_path)) as pool, pytest.raises(ExecutionError) as caught:
        ssh.run(pool.get(hang_up_node), "true", node=hang_up_node)
    assert str(caught.value) == f"lost the connection to {ssh.describe(hang_up_node)}: EOFError"


def test_the_liveness_check_names_why_a_node_stopped_answering(hang_up_node, tmp_path):
    launcher = mpi.Launcher([hang_up_node], ssh_options=_options(tmp_path))
    try:
        with pytest.raises(ExecutionError) as caught:
            launcher._health()  # what a run calls every `liveness` seconds
    finally:
        launcher.close()
    assert f"{ssh.describe(hang_up_node)} stopped answering during the run (EOFError)" in str(caught.value)


def test_a_file_that_cannot_be_written_names_why(hang_up_node, tmp_path):
    with ssh.Connections(_options(tmp_path)) as pool, pytest.raises(ExecutionError) as caught:
        ssh.put(pool.get(hang_up_node), b"data", "/tmp/never-written", node=hang_up_node)
    assert str(caught.value) == f"cannot write ? on {ssh.describe(hang_up_node)}: EOFError"


def test_mpiexec_that_cannot_start_names_why(hang_up_node, tmp_path):
    options = _options(tmp_path)
    with ssh.Connections(options) as pool, pytest.raises(ExecutionError) as caught:
        mpi._RemoteProcess(pool.get(hang_up_node), hang_up_node, ["mpiexec", "true"], options)
    assert str(caught.value) == f"cannot start mpiexec on {ssh.describe(hang_up_node)}: EOFError"
