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


def test_netlink_and_proc_net_tcp_agree_on_socket_inodes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                for sock in (client, accepted):
                    local, remote = sock.getsockname(), sock.getpeername()
                    inode = procs._diag_inode(local, remote)
                    assert inode is not None and inode == procs._proc_net_tcp_inode(local, remote)
                    assert inode == os.fstat(sock.fileno()).st_ino
                assert procs._diag_inode(("127.0.0.1", 1), server.getsockname()) is None


def test_tree_reads_the_same_as_the_path_based_readings() -> None:
    pid = os.getpid()
    tree = procs.Tree(pid)
    try:
        members = tree.members()
        assert members[0] == pid and set(members) == set(procs.tree(pid))
        tree.reset_peaks(members)
        block = bytearray(32 * 1024 * 1024)
        assert tree.peak_bytes(members) >= procs.rss_bytes(members) - 4 * 1024 * 1024
        assert abs(tree.peak_bytes(members) - procs.peak_bytes(members)) < 1024 * 1024
        del block
    finally:
        tree.close()
    assert tree.members() == [] and tree.peak_bytes([pid]) == 0  # closed: the leader counts as gone
