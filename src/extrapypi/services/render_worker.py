"""A child process that renders descriptions under a CPU, memory and wall-clock limit.

docutils and the Markdown front end are pure Python as far as we are concerned: a hostile
description (thousands of nested blocks, megabytes of inline markup) can run for minutes,
take gigabytes or overflow the stack, and a thread cannot be interrupted. A separate process
can: it runs under ``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` (set afresh before each job), the
parent stops waiting after a wall-clock limit and kills it, and the next render starts a new one.

The process lives as long as it behaves, so the imports (~0.3 s) are paid once per app process,
not once per upload. Both sides of the pipe are here: :class:`RenderWorker` in the app, and
:func:`main` (this file run as a script) in the child. Frames are an 8-byte
big-endian length followed by that many bytes of JSON.
"""

import io
import json
import logging
import os
import re
import resource
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: How long a new child may take to import the renderers before it counts as broken.
STARTUP_SECONDS = 20.0
READY = {"ready": True}


@dataclass(frozen=True)
class Outcome:
    """The child's answer: ``html`` (nh3-cleaned) or ``None`` with the reason in plain words.

    ``lasting`` is False when the failure says nothing about the description (the worker could
    not be started): the caller should not remember that result.
    """

    html: str | None
    reason: str = ""
    lasting: bool = True


class WorkerBroken(Exception):
    """The child died, answered nonsense or overran its time: it has been killed."""


def _frame(payload: dict) -> bytes:
    data = json.dumps(payload).encode("utf-8")
    return len(data).to_bytes(8, "big") + data


class RenderWorker:
    """One child process at a time, used by one thread at a time, restarted after any failure."""

    def __init__(self, seconds: float, memory_bytes: int) -> None:
        self.seconds = seconds
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner = os.getpid()

    def render(self, text: str, kind: str, variant: str = "") -> Outcome:
        """Render ``text`` as ``kind`` (``text/x-rst`` or ``text/markdown``) within the limits."""
        with self._lock:
            try:
                process = self._running()
            except (OSError, WorkerBroken) as error:
                log.error("cannot start the description renderer: %s", error)
                return Outcome(None, "the renderer is not available", lasting=False)
            try:
                deadline = time.monotonic() + self.seconds
                self._send(process, {"text": text, "kind": kind, "variant": variant}, deadline)
                reply = self._receive(process, deadline)
                html, reason = reply.get("html"), str(reply.get("reason", ""))
            except WorkerBroken as error:
                self._stop()
                return Outcome(None, str(error))
            except (OSError, ValueError, AttributeError):  # a garbled answer: start afresh
                self._stop()
                return Outcome(None, "the renderer failed")
            if not isinstance(html, str):
                return Outcome(None, reason or "the renderer gave no output")
            return Outcome(html)

    def close(self) -> None:
        with self._lock:
            self._stop()

    # --- the parent's side of the pipe -----------------------------------------------------

    def _running(self) -> subprocess.Popen:
        if self._owner != os.getpid():  # forked (a pre-loading server): the child is the parent's
            self._process, self._owner = None, os.getpid()
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        # This file as a script, not ``-m``: importing the extrapypi package (Pyramid,
        # SQLAlchemy) would triple the start-up time. It needs only the standard library.
        # -P: the script's directory (our services package) must not shadow any module.
        command = [
            sys.executable,
            "-P",
            os.path.abspath(__file__),
            str(int(self.memory_bytes)),
            str(max(1, int(self.seconds + 0.999))),
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C in pserve's terminal is the parent's business
        )
        self._process = process
        try:
            if self._receive(process, time.monotonic() + STARTUP_SECONDS) != READY:
                raise WorkerBroken("the renderer did not start")
        except WorkerBroken:
            self._stop()
            raise
        return process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def _send(self, process: subprocess.Popen, payload: dict, deadline: float) -> None:
        data = memoryview(_frame(payload))
        fd = process.stdin.fileno()
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken("rendering took too long")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
            try:
                written = os.write(fd, data[:65536])
            except OSError:
                raise WorkerBroken("the renderer stopped") from None
            data = data[written:]

    def _receive(self, process: subprocess.Popen, deadline: float) -> dict:
        header = self._read(process, 8, deadline)
        return json.loads(self._read(process, int.from_bytes(header, "big"), deadline))

    def _read(self, process: subprocess.Popen, size: int, deadline: float) -> bytes:
        fd = process.stdout.fileno()
        chunks = []
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken("rendering took too long")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise WorkerBroken(_why_it_died(process))
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def _why_it_died(process: subprocess.Popen) -> str:
    try:
        code = process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        return "the renderer stopped answering"
    if code in (-9, -24):  # SIGKILL/SIGXCPU from RLIMIT_CPU
        return "rendering took too long"
    return "rendering failed (it needed too much memory or crashed)"


# --- the child's side --------------------------------------------------------------------------


def _first_problem(warnings: io.StringIO) -> str:
    """``<string>:3: (WARNING/2) Title underline too short.`` → `` (line 3: Title underline…)``."""
    for line in warnings.getvalue().splitlines():
        match = re.match(r"<string>:(\d+): \(\w+/\d\) (.+)", line)
        if match:
            return f" (line {match.group(1)}: {match.group(2)[:120]})"
    return ""


def _render(text: str, kind: str, variant: str) -> dict:
    from readme_renderer import markdown, rst

    try:
        if kind == "text/markdown":
            html = markdown.render(text, variant=variant or "GFM")
            return {"html": html} if html is not None else {"reason": "unknown Markdown variant"}
        warnings = io.StringIO()
        html = rst.render(text, stream=warnings)
        if html is None:
            return {"reason": "it is not valid reStructuredText" + _first_problem(warnings)}
        return {"html": html}
    except RecursionError:
        return {"reason": "it is nested too deeply"}
    except MemoryError:
        return {"reason": "it needs too much memory"}
    except Exception as error:
        return {"reason": f"the renderer failed ({type(error).__name__})"}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    memory_bytes, seconds = int(argv[0]), int(argv[1])
    import readme_renderer.markdown
    import readme_renderer.rst  # noqa: F401

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(_frame(READY))
    stdout.flush()
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return 0
        job = json.loads(stdin.read(int.from_bytes(header, "big")))
        # RLIMIT_CPU counts the process's whole life: allow this job ``seconds`` more.
        # Only the soft limit moves (SIGXCPU ends the process); an unprivileged process could
        # never raise a hard limit again.
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        limit = int(_cpu_seconds()) + seconds + 1
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
        stdout.write(_frame(_render(job["text"], job["kind"], job.get("variant", ""))))
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
