"""router's Python zygote: a template interpreter that forks new Python instances on request.

Started by the router as `python -S -u python_bootstrap.py --zygote CTRL_FD` (the bootstrap imports this
module only then), with the base environment every Python instance gets (PATH, LANG, TZ, HOME), so the
interpreter-level settings that are fixed at start-up (locale, flags) are those of a fresh instance. It has
already imported the bootstrap and its modules; a fork costs about a millisecond where a fresh interpreter
costs tens.

Protocol, on CTRL_FD (an AF_UNIX SOCK_SEQPACKET socket, one JSON object per message):

* router -> zygote `{"op": "fork", "id": N}` with two descriptors attached (SCM_RIGHTS): the write end of
  the pipe the instance's stdout and stderr go to, and a memfd holding the instance as JSON, `{"argv":
  [...], "env": {...}, "cwd": "...", "confine": {...}}`, which only the child reads (the zygote's memory,
  which every later fork inherits, never holds a function's environment), and for `network: false` a
  third, the instance's network namespace. The zygote forks (or rather has forked: it keeps one child
  forked ahead, the spare, in a session of its own and waiting on a socket for its request, and hands it
  the request and its descriptors; the next spare is forked once the request is answered); the child
  becomes what `python -S -u python_bootstrap.py ARGV...` in `cwd` with exactly `env` would be: a new
  session and process group (setsid), stdin /dev/null, stdout and stderr on the pipe, no other descriptor
  open, confined as `confine` says (confine.py: cgroups, namespaces, uid), os.environ replaced (and
  time.tzset() for TZ), sys.argv set; then it returns from `serve` into the bootstrap's main(). The zygote
  answers `{"id": N, "pid": P}` once the child has called setsid (so the group the router kills exists), or
  `{"id": N, "error": "..."}`.
* zygote -> router `{"exit": P, "status": S}` when child P exited (S as subprocess's returncode: the exit
  code, or -signal). The child stays a zombie, holding its pid and so its process group id, until the router
  says `{"op": "reap", "pid": P}`: the router kills what is left of the group first, as it does for the
  processes it spawns itself, and no reused pid can be hit meanwhile.
* `{"ready": true}` is sent once at start. End of file on CTRL_FD, or SIGTERM (the router's death: it is
  the zygote's parent-death signal): the zygote SIGKILLs the process group of every instance it forked
  that is still running, and exits.
"""

import array
import json
import os
import select
import signal
import socket
import sys
import time

import confine  # beside this file; imported before any fork, so a child needs no file to confine itself

MAX_MESSAGE = 1 << 20
children: dict[int, int] = {}  # pidfd -> pid of each instance forked and not yet reported exited
# The next instance, forked ahead of its request: (pid, our end of its socket, its "setsid done" pipe,
# its pidfd: a spare that dies waiting is reaped and replaced at once).
spare: tuple[int, socket.socket, int, int] | None = None


def _end(*_):
    """The router is gone: take every instance we forked with us."""
    pids = [*children.values(), *([spare[0]] if spare is not None else [])]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


def serve(ctrl_fd):
    """Serve fork requests; returns only in a forked child, set up as a fresh instance."""
    ctrl = socket.socket(fileno=ctrl_fd)
    ctrl.setblocking(True)
    signal.signal(signal.SIGTERM, _end)
    poller = select.poll()
    poller.register(ctrl.fileno(), select.POLLIN)
    child = _spare_ahead(ctrl, poller)
    if child is not None:
        return child
    ctrl.send(json.dumps({"ready": True}).encode())
    while True:
        for fd, _ in poller.poll():
            if spare is not None and fd == spare[3]:
                _spare_gone(poller)
                continue
            if fd != ctrl.fileno():
                if fd in children:  # else the spare's, already reaped by a request in the same poll
                    _report_exit(ctrl, poller, children, fd)
                continue
            message, fds = _receive(ctrl)
            if message is None:
                _end()
            op = message.get("op")
            if op == "fork":
                child = _fork(ctrl, poller, children, message, fds)
                if child is not None:
                    return child
            elif op == "reap":
                _reap(message["pid"])
            for fd in fds:
                os.close(fd)
        # After the requests' descriptors are closed: a spare must not hold them.
        child = _spare_ahead(ctrl, poller)
        if child is not None:
            return child


def _receive(ctrl):
    data, ancdata, _, _ = ctrl.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(16 * 4))
    if not data:
        return None, []
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4))
    return json.loads(data), fds


def _send(ctrl, message):
    try:
        ctrl.send(json.dumps(message).encode())
    except OSError:
        os._exit(0)


def _fork(ctrl, poller, children, message, fds):
    if len(fds) not in (2, 3):
        _send(ctrl, {"id": message.get("id"), "error": f"expected 2 or 3 descriptors, got {len(fds)}"})
        return None
    handed = _hand_to_spare(poller, message, fds)
    if handed is None:  # no spare (or it died waiting): fork one now and give it the request
        try:
            child = _fork_spare(ctrl, poller)
        except OSError as e:
            _send(ctrl, {"id": message["id"], "error": f"fork: {e}"})
            return None
        if child is not None:
            return child
        handed = _hand_to_spare(poller, message, fds)
        if handed is None:
            _send(ctrl, {"id": message["id"], "error": "fork: the new instance ended before its request"})
            return None
    pid, pidfd = handed
    children[pidfd] = pid
    poller.register(pidfd, select.POLLIN)
    _send(ctrl, {"id": message["id"], "pid": pid})
    return None


def _spare_ahead(ctrl, poller):
    """Fork the spare if there is none, before it is asked for, so that a cold start does not wait for the
    fork. None in the zygote (also when the fork fails: the next request forks and reports it), the request
    in the spare once it has one."""
    if spare is not None:
        return None
    try:
        return _fork_spare(ctrl, poller)
    except OSError:
        return None


def _fork_spare(ctrl, poller):
    """Fork an instance that leaves the zygote and waits on a socket for its request. Returns that request
    in the child once it gets one, None in the zygote; raises OSError when the fork fails."""
    global spare
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ready_r, ready_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        os.close(ready_r)
        os.close(ready_w)
        raise
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the zygote's own ending is not the instance's
        children.clear()
        ours.close()  # so that the zygote's end closing (its exit) is an end of file here
        os.close(ready_r)
        ctrl.detach()  # closed with the rest in _become_instance; the object must not close a reused number
        os.setsid()  # our own session and process group before we are handed out
        os.close(ready_w)  # the zygote may answer with our pid now: our process group exists
        message, fds = _receive(theirs)
        if message is None:
            os._exit(0)  # the zygote is gone
        theirs.detach()  # closed with the rest in _become_instance
        try:
            _become_instance(_read_spec(fds[1]), fds[0], fds[2] if len(fds) > 2 else None)
        except BaseException as e:  # never return into the zygote's loop
            os.write(2, f"zygote: could not set up the instance: {e!r}\n".encode())
            os._exit(127)
        return message
    theirs.close()
    os.close(ready_w)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    spare = (pid, ours, ready_r, pidfd)
    return None


def _hand_to_spare(poller, message, fds):
    """Give the request to the spare: (its pid, its pidfd), or None (no spare, or it is dying: fork)."""
    global spare
    if spare is None:
        return None
    pid, sock, ready_r, pidfd = spare
    try:
        sock.sendmsg(
            [json.dumps(message).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        )
    except OSError:
        os.kill(pid, signal.SIGKILL)
        _spare_gone(poller)
        return None
    spare = None
    sock.close()
    poller.unregister(pidfd)  # an instance's pidfd from now on: its exit is reported
    os.read(ready_r, 1)  # its setsid was done long ago
    os.close(ready_r)
    return pid, pidfd


def _spare_gone(poller):
    """The spare died waiting (or is being killed): reap it; the loop forks the next one."""
    global spare
    assert spare is not None
    pid, sock, ready_r, pidfd = spare
    spare = None
    poller.unregister(pidfd)
    sock.close()
    os.close(ready_r)
    os.close(pidfd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _read_spec(fd):
    size = os.fstat(fd).st_size
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), len(data))
        if not chunk:
            break
        data += chunk
    return json.loads(data)


def _become_instance(message, out_fd, netns=None):
    if netns is not None:
        confine.join_network(netns)  # before every descriptor but 0, 1 and 2 is closed
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    # The control socket, the pipe's copy, the other children's pidfds: every descriptor but 0, 1 and 2.
    os.closerange(3, max(1 << 16, os.sysconf("SC_OPEN_MAX")))
    confine.enter(message["confine"])
    sys.modules.pop("confine", None)  # the function may have a module of that name
    os.chdir(message["cwd"])
    # The interpreter's own addition at start-up (PEP 538 C locale coercion) is what a fresh instance gets
    # too: the locale variables are the same for both (a function that sets one is never forked).
    coerced = os.environ.get("LC_CTYPE")
    os.environ.clear()
    os.environ.update(message["env"])
    if coerced is not None and "LC_CTYPE" not in os.environ:
        os.environ["LC_CTYPE"] = coerced
    time.tzset()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    bootstrap = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_bootstrap.py")
    sys.argv = [bootstrap, *message["argv"]]
    sys.orig_argv[:] = [sys.executable, "-S", "-u", *sys.argv]
    sys.modules.pop(__name__, None)


def _report_exit(ctrl, poller, children, pidfd):
    try:
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except ChildProcessError:
        info = None
    else:
        if info is None:
            return  # not exited: an event of a descriptor closed in the same poll whose number was reused
    pid = children.pop(pidfd)
    poller.unregister(pidfd)
    os.close(pidfd)
    status = None
    if info is not None:
        status = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    _send(ctrl, {"exit": pid, "status": status})


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
