"""The state_dir's lock (router/core/state_lock.py) and the keeper's two endings
(router/invoker/leftovers.py): told the router stopped, it cleans nothing; at a bare end of file (the
router died) it takes the lock and kills what the records name. Real processes: the keeper is
`python -m router.invoker.leftovers`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from router.core.state_lock import StateDirInUse, StateLock
from router.invoker import leftovers
from tests.support import alive, wait_gone

REPO = Path(__file__).resolve().parents[2]


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    held = StateLock.acquire(tmp_path)
    with pytest.raises(StateDirInUse) as refused:
        StateLock.acquire(tmp_path)  # another open file of the same folder, as another process would have
    assert str(refused.value) == (
        f"state_dir {tmp_path.resolve()} is in use by another router (pid {os.getpid()}); "
        "give each router its own state_dir"
    )
    held.release()
    StateLock.acquire(tmp_path, holder="keeper").release()


def test_a_start_waits_for_the_holder_up_to_wait_s(tmp_path: Path) -> None:
    held = StateLock.acquire(tmp_path, holder="keeper")
    threading.Timer(0.3, held.release).start()
    started = time.monotonic()
    StateLock.acquire(tmp_path, wait_s=10).release()
    assert 0.2 < time.monotonic() - started < 10
    held = StateLock.acquire(tmp_path, holder="keeper")
    with pytest.raises(StateDirInUse, match=r"in use by another keeper \(pid \d+\)"):
        StateLock.acquire(tmp_path, wait_s=0.2)
    held.release()


def test_no_child_inherits_the_lock(tmp_path: Path) -> None:
    held = StateLock.acquire(tmp_path)
    child = subprocess.Popen(["sleep", "30"], close_fds=False)  # even one that keeps every inheritable fd
    try:
        held.release()
        StateLock.acquire(tmp_path).release()  # the child holds nothing: the lock is free
    finally:
        child.kill()
        child.wait()


def _recorded_sleeper(state: Path) -> subprocess.Popen[bytes]:
    """A process group of the router's, as the records name one (an instance left running)."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    records = leftovers.Records(state)
    records.router([])
    records.group(sleeper.pid)
    return sleeper


def _keeper(state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "router.invoker.leftovers", str(state)], stdin=subprocess.PIPE, env=env
    )


def test_told_the_router_stopped_the_keeper_cleans_nothing(tmp_path: Path) -> None:
    sleeper = _recorded_sleeper(tmp_path)
    keeper = _keeper(tmp_path)
    try:
        assert keeper.stdin is not None
        keeper.stdin.write(leftovers.STOPPED)
        keeper.stdin.close()
        assert keeper.wait(10) == 0
        assert sleeper.poll() is None and alive(sleeper.pid)
        assert (leftovers.run_dir(tmp_path) / f"group-{sleeper.pid}.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_at_the_routers_death_the_keeper_takes_the_lock_then_cleans(tmp_path: Path) -> None:
    sleeper = _recorded_sleeper(tmp_path)
    held = StateLock.acquire(tmp_path)  # the router, alive a moment longer than its pipe
    keeper = _keeper(tmp_path)
    try:
        assert keeper.stdin is not None
        keeper.stdin.close()  # end of file without a word: the router died
        time.sleep(0.5)
        assert sleeper.poll() is None  # nothing cleaned while the router holds the folder
        held.release()
        assert keeper.wait(10) == 0
        assert wait_gone([sleeper.pid]) == []
        assert not list(leftovers.run_dir(tmp_path).glob("*.json"))
    finally:
        held.release()
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait()


def test_a_keeper_leaves_a_folder_a_new_router_holds_alone(tmp_path: Path) -> None:
    sleeper = _recorded_sleeper(tmp_path)  # what the new router runs now, under the folder's names
    held = StateLock.acquire(tmp_path)  # the new router
    keeper = _keeper(tmp_path)  # the keeper of the one that died
    try:
        assert keeper.stdin is not None
        keeper.stdin.close()
        assert keeper.wait(10) == 0  # it gave up after KEEPER_LOCK_WAIT_S
        assert sleeper.poll() is None
    finally:
        held.release()
        sleeper.kill()
        sleeper.wait()
