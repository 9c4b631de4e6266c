"""Run a child process in its own session and stop its whole process tree: at a time limit, on cancel, at exit.

No Qt, no NumPy. The child starts with ``start_new_session=True`` (its pid is its process group and session),
stdin closed, stdout and stderr captured through pipes (only the last :data:`MAX_OUTPUT_BYTES` kept), a
request pipe it reads from and a result pipe it writes to. The parent waits for the child process itself,
never for the pipes to close, so a grandchild that inherited stdout cannot hold the check open. When the
child has exited, timed out or been cancelled, every process left in its group or session gets SIGTERM,
then SIGKILL after :data:`TERM_GRACE_S` (at once if it ignores SIGTERM), and only then is the child reaped
(so its pid, the group id, cannot be reused while the group is being stopped).

A process that deliberately leaves the session (``os.setsid()`` in a fork, a daemon) is not tracked:
this keeps mistakes contained, it is not a security boundary against the user's own code.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_OUTPUT_BYTES",
    "TERM_GRACE_S",
    "ProcessOutcome",
    "cap_text",
    "live_group_members",
    "run_in_session",
    "stop_group",
]

MAX_OUTPUT_BYTES = 64 * 1024  # of stdout, of stderr, and of error text shown to the user (the tail is kept)
TERM_GRACE_S = 0.5  # between SIGTERM and SIGKILL
POLL_S = 0.05  # how often the wait checks the cancel event and the clock
DRAIN_S = 1.0  # at most this long reading what is left in the pipes after the tree is stopped
_CHUNK = 1 << 16


def cap_text(text: str, limit: int = MAX_OUTPUT_BYTES) -> str:
    """The last ``limit`` characters of ``text``, saying how much was cut when it was longer.

    Examples
    --------
    >>> cap_text("abcdef", 3)
    '[... 3 characters cut ...]\\ndef'
    >>> cap_text("abc", 3)
    'abc'
    """
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


class _Tail:
    """The last ``limit`` bytes written to a stream, and how many bytes there were in all."""

    def __init__(self, limit: int):
        self.limit, self.total, self.data = limit, 0, bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * self.limit:  # trim now and then, not on every chunk
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        kept = bytes(self.data[-self.limit :])
        body = kept.decode("utf-8", errors="replace")
        cut = self.total - len(kept)
        return f"[... {cut} bytes cut ...]\n{body}" if cut > 0 else body


@dataclass(frozen=True)
class ProcessOutcome:
    """How the child ended and what it wrote.

    Attributes
    ----------
    returncode : int
        The child's exit status (negative: killed by that signal).
    stdout, stderr : str
        The tails of its output (at most :data:`MAX_OUTPUT_BYTES` each, with a note when cut).
    channel : bytes
        Everything it wrote to the result pipe (at most ``max_channel_bytes``).
    channel_overflow : bool
        It wrote more than ``max_channel_bytes`` to the result pipe (and was stopped).
    timed_out, cancelled : bool
        It was stopped at the time limit / because the cancel event was set.
    duration_s : float
        Wall time from start to the child's end.
    """

    returncode: int
    stdout: str
    stderr: str
    channel: bytes
    channel_overflow: bool
    timed_out: bool
    cancelled: bool
    duration_s: float


def _stat_fields(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, session) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        return fields[0].decode(), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def live_group_members(leader: int) -> list[int]:
    """Pids of the processes, not zombies, whose process group or session is ``leader``'s (Linux /proc).

    Without /proc, answers with ``[leader]`` while ``os.killpg(leader, 0)`` finds the group.
    """
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(leader, 0)
        except OSError:
            return []
        return [leader]
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat_fields(int(name))
            if info is not None and info[0] != "Z" and leader in (info[1], info[2]):
                members.append(int(name))
    return members


def _signal_all(leader: int, pids: Sequence[int], sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):  # the group is empty or gone
        os.killpg(leader, sig)
    for pid in pids:  # members that moved to another group of the same session
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def stop_group(leader: int, grace_s: float = TERM_GRACE_S) -> None:
    """Stop every process in ``leader``'s process group and session: SIGTERM, then SIGKILL after ``grace_s``.

    Returns when none is left alive (zombies waiting for their parent do not count), or after a last second
    of waiting for SIGKILL to land. The leader itself should not have been reaped yet (so its pid cannot be
    reused meanwhile); the caller reaps it afterwards.
    """
    members = live_group_members(leader)
    if not members:
        return
    _signal_all(leader, members, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while members and time.monotonic() < deadline:
        time.sleep(0.01)  # other processes' exits cannot be waited for; poll /proc
        members = live_group_members(leader)
    for _ in range(100):  # SIGKILL cannot be ignored; wait (at most ~1 s) until the kernel has done it
        if not members:
            return
        _signal_all(leader, members, signal.SIGKILL)
        time.sleep(0.01)
        members = live_group_members(leader)


def _exited(pid: int) -> bool:
    """True once the child has ended, without reaping it (its pid stays reserved)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def run_in_session(
    argv: Sequence[str],
    request: bytes,
    timeout_s: float,
    *,
    cancel: threading.Event | None = None,
    max_channel_bytes: int,
    cwd: str | None = None,
    on_channel: Callable[[bytes], None] | None = None,
) -> ProcessOutcome:
    """Start ``argv`` in a new session and return how it ended; never leaves a process of its tree behind.

    ``argv`` is formatted with ``{request_fd}`` and ``{result_fd}``: the child reads ``request`` from the
    first (until end of file) and writes its result to the second.

    Parameters
    ----------
    argv : sequence of str
        The command, with the placeholders above.
    request : bytes
        Written to the child's request pipe while the parent waits.
    timeout_s : float
        Wall-clock limit; then the whole tree is stopped.
    cancel : threading.Event, optional
        Set from any thread to stop the tree now.
    max_channel_bytes : int
        More than this on the result pipe stops the tree (``channel_overflow``).
    cwd : str, optional
        The child's working folder.
    on_channel : callable, optional
        Called (on this thread) with each chunk read from the result pipe, as it arrives; also kept in
        ``channel``.

    Returns
    -------
    ProcessOutcome
    """
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    command = [a.format(request_fd=req_r, result_fd=res_w) for a in argv]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, cwd=cwd,
                                pass_fds=(req_r, res_w), start_new_session=True)  # fmt: skip
    except BaseException:
        for fd in (req_r, req_w, res_r, res_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    for fd in (req_r, res_w, out_w, err_w):
        os.close(fd)
    out, err, channel = _Tail(MAX_OUTPUT_BYTES), _Tail(MAX_OUTPUT_BYTES), bytearray()
    timed_out = cancelled = overflow = False
    sel = selectors.DefaultSelector()
    try:
        for fd in (out_r, err_r, res_r):
            sel.register(fd, selectors.EVENT_READ)
        os.set_blocking(req_w, False)
        pending = memoryview(request)
        if pending:
            sel.register(req_w, selectors.EVENT_WRITE)
        else:
            os.close(req_w)
            req_w = -1

        def pump(timeout: float) -> bool:
            """Move data once; False when nothing was ready."""
            nonlocal pending, req_w, overflow
            events = sel.select(timeout)
            for key, _ in events:
                fd = int(key.fd)
                if fd == req_w:
                    try:
                        pending = pending[os.write(fd, pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except OSError:  # the child closed its end (or died): no more request
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(fd)
                        os.close(fd)
                        req_w = -1
                    continue
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    sel.unregister(fd)
                elif fd == res_r:
                    if len(channel) + len(chunk) > max_channel_bytes:
                        overflow = True
                    else:
                        channel.extend(chunk)
                        if on_channel is not None:
                            on_channel(chunk)
                else:
                    (out if fd == out_r else err).add(chunk)
            return bool(events)

        deadline = start + timeout_s
        while not _exited(proc.pid):
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if now >= deadline:
                timed_out = True
                break
            if overflow:
                break
            pump(min(POLL_S, deadline - now))
        duration = time.monotonic() - start
        stop_group(proc.pid)
        returncode = proc.wait()
        if req_w >= 0:
            sel.unregister(req_w)
            os.close(req_w)
            req_w = -1
        # Everything the child wrote before it ended is in the pipes now; read it, but do not wait for
        # end-of-file (a process that left the session may still hold a write end).
        drain_until = time.monotonic() + DRAIN_S
        while sel.get_map() and time.monotonic() < drain_until and pump(0.0):
            pass
    finally:
        sel.close()
        for fd in (out_r, err_r, res_r, req_w):
            if fd >= 0:
                os.close(fd)
        if proc.returncode is None:  # an exception above (a programming error): still leave nothing behind
            stop_group(proc.pid)
            proc.wait()
    return ProcessOutcome(returncode, out.text(), err.text(), bytes(channel), overflow, timed_out, cancelled,
                          duration)  # fmt: skip
