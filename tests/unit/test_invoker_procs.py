"""What the invoker reads from /proc, checked on the test process itself (no child processes)."""

from __future__ import annotations

import os
import socket

from router.invoker import procs


def test_socket_owner_is_found_among_the_right_pids() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                local, remote = client.getsockname(), server.getsockname()
                assert procs.socket_inode(local, remote) is not None
                assert procs.socket_owner_in([os.getpid()], local, remote)
                assert not procs.socket_owner_in([os.getppid()], local, remote)
                assert not procs.socket_owner_in([os.getpid()], ("127.0.0.1", 1), remote)


def test_memory_readings_of_this_process() -> None:
    me = [os.getpid()]
    assert procs.tree(os.getpid())[0] == os.getpid()
    procs.reset_peaks(me)
    rss = procs.rss_bytes(me)
    peak = procs.peak_bytes(me)
    assert rss > 1024 * 1024 and peak >= rss * 0.9
    block = bytearray(64 * 1024 * 1024)  # touched (zeroed) pages raise the peak
    assert procs.peak_bytes(me) >= peak + 60 * 1024 * 1024
    del block
    assert procs.rss_bytes([2**22 + 12345]) == 0 and procs.peak_bytes([2**22 + 12345]) == 0
