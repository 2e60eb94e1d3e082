"""Real Redis, NATS (JetStream) and PostgreSQL servers on loopback for the bridge tests, CI and benchmarks.

Standard library only, so `.ci/servers.sh` can run it with the system python before any venv exists:

    python3 tests/bridges/servers.py start [--state PATH]   # start all three, wait until each answers
    python3 tests/bridges/servers.py stop  [--state PATH]   # stop them by the PIDs in the state file
    python3 tests/bridges/servers.py status [--state PATH]

Each server runs in its own session (process group) on a free loopback port, with its data under a fresh
temporary directory; the state file (JSON) records kind, PID, port, URL and data directory. `Server` is also
used by the tests directly: `kill()` is a crash (SIGKILL to the whole process group) and `start()` brings the
same server back on the same port with the same data, which is how the fault tests restart a broker
mid-stream. Redis runs with the append-only file fsynced on every write and NATS with JetStream file storage,
so what a durable bridge was told was stored survives the crash.

PostgreSQL refuses to run as root: when we are root, initdb and postgres run as the `postgres` user
(subprocess `user=`), with trust authentication on 127.0.0.1 and a `bubus` database.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("redis", "nats", "postgres")
DEFAULT_STATE = Path(os.environ.get("BUBUS_TEST_SERVERS_STATE", "/tmp/bubus-test-servers/state.json"))
ENV_URLS = {
    "redis": "BUBUS_TEST_REDIS_URL",
    "nats": "BUBUS_TEST_NATS_URL",
    "postgres": "BUBUS_TEST_POSTGRES_URL",
}
READY_TIMEOUT = 30.0


class ServerUnavailable(RuntimeError):
    """The server binary is not installed here (the message says which one and how to install it)."""


def _postgres_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key, reverse=True)
    if candidates:
        return candidates[0]
    return shutil.which(name)


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    try:
        return tuple(int(p) for p in parts[parts.index("postgresql") + 1].split("."))
    except (ValueError, IndexError):
        return (0,)


def binary(kind: str) -> str | None:
    """Path of the server binary for `kind`, or None when it is not installed."""
    if kind == "redis":
        return shutil.which("redis-server") or _existing("/usr/bin/redis-server")
    if kind == "nats":
        return (
            shutil.which("nats-server")
            or _existing("/usr/sbin/nats-server")
            or _existing("/usr/bin/nats-server")
        )
    if kind == "postgres":
        return _postgres_bin("postgres")
    raise ValueError(f"unknown server kind: {kind!r}")


def _existing(path: str) -> str | None:
    return path if os.path.exists(path) else None


def install_hint(kind: str) -> str:
    package = {"redis": "redis-server", "nats": "nats-server", "postgres": "postgresql"}[kind]
    return f"apt-get install -y {package} (or run .ci/servers.sh start)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class Server:
    """One server process we started; `kill()` + `start()` is a crash and restart with the same data."""

    kind: str
    port: int = field(default_factory=free_port)
    data_dir: str = ""
    pid: int | None = None
    owned_dir: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown server kind: {self.kind!r}")
        if not self.data_dir:
            self.data_dir = tempfile.mkdtemp(prefix=f"bubus-{self.kind}-")

    @property
    def url(self) -> str:
        if self.kind == "redis":
            return f"redis://127.0.0.1:{self.port}/0"
        if self.kind == "nats":
            return f"nats://127.0.0.1:{self.port}"
        return f"postgresql://postgres@127.0.0.1:{self.port}/bubus"

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT) -> Server:
        """Start (or restart) the server and return once it answers; raises on failure with its log tail."""
        exe = binary(self.kind)
        if exe is None:
            raise ServerUnavailable(
                f"{self.kind} server binary not found; install it: {install_hint(self.kind)}"
            )
        if self.kind == "postgres":
            self._initdb()
        cmd, user = self._command(exe)
        log = open(Path(self.data_dir) / f"{self.kind}.out", "ab")
        try:
            kwargs: dict[str, object] = {}
            if user is not None:
                kwargs["user"] = user
                kwargs["group"] = user
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.data_dir,
                **kwargs,  # type: ignore[arg-type]
            )
        finally:
            log.close()
        self.pid, self._proc = proc.pid, proc
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {proc.returncode} on start:\n{self.log_tail()}")
            if self.answers():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.kind} did not answer within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        if self.kind == "postgres":
            self._ensure_database()
        return self

    def kill(self) -> None:
        """Crash: SIGKILL the server's whole process group (postgres backends included) and reap it."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM; SIGKILL after `timeout`)."""
        self._signal(signal.SIGTERM, timeout)

    def cleanup(self) -> None:
        self.kill()
        if self.owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _signal(self, sig: signal.Signals, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        proc, self._proc = self._proc, None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid) or _group_alive(pid):
            if proc is not None:
                proc.poll()
            else:
                _reap(pid)
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.02)
        if proc is not None:
            proc.wait()

    # -- per kind ----------------------------------------------------------------------------------------------
    def _command(self, exe: str) -> tuple[list[str], str | None]:
        d = self.data_dir
        if self.kind == "redis":
            return [
                exe,
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no",
                "--daemonize", "no", "--logfile", "",
            ], None  # fmt: skip
        if self.kind == "nats":
            return [exe, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(Path(d) / "js")], None
        sock_dir = Path(d) / "sock"
        return [
            exe,
            "-D", str(Path(d) / "data"), "-p", str(self.port), "-k", str(sock_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ], ("postgres" if _is_root() else None)  # fmt: skip

    def _initdb(self) -> None:
        data = Path(self.data_dir) / "data"
        if (data / "PG_VERSION").exists():
            return
        initdb = _postgres_bin("initdb")
        if initdb is None:
            raise ServerUnavailable(f"initdb not found; install it: {install_hint('postgres')}")
        (Path(self.data_dir) / "sock").mkdir(exist_ok=True)
        user = "postgres" if _is_root() else None
        if user is not None:
            shutil.chown(self.data_dir, user, user)
            shutil.chown(Path(self.data_dir) / "sock", user, user)
        kwargs: dict[str, object] = {"user": user, "group": user} if user else {}
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "-N"],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.data_dir,
            **kwargs,  # type: ignore[arg-type]
        )

    def _ensure_database(self) -> None:
        psql = _postgres_bin("psql")
        if psql is None:
            raise ServerUnavailable(f"psql not found; install it: {install_hint('postgres')}")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tAc"]
        exists = subprocess.run(
            [*base, "SELECT 1 FROM pg_database WHERE datname = 'bubus'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run([*base, "CREATE DATABASE bubus"], check=True, capture_output=True)

    def answers(self) -> bool:
        """One bounded probe: does the server speak its protocol on our port yet?"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.settimeout(1.0)
                if self.kind == "redis":
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith(b"+PONG")
                if self.kind == "nats":
                    line = s.recv(4096)
                    return line.startswith(b"INFO ") and b'"jetstream":true' in line
                # PostgreSQL: SSLRequest; a live server answers 'S' or 'N'.
                s.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
                if s.recv(1) not in (b"S", b"N"):
                    return False
        except OSError:
            return False
        isready = _postgres_bin("pg_isready")
        if isready is None:
            return True
        return (
            subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False).returncode
            == 0
        )

    def log_tail(self, lines: int = 30) -> str:
        path = Path(self.data_dir) / f"{self.kind}.out"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "data_dir": self.data_dir,
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(_pgid_of(p) == pgid and not _is_zombie(p) for p in _pids())


def _pids() -> list[int]:
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# -- for the test fixtures ---------------------------------------------------------------------------------
MISSING: dict[str, str] = {}  # kind -> why it could not start; the test run's summary lists these
LEAKS_PENDING = False  # a test may have left coredis' unclosed streams behind (see conftest.py)


def start_or_skip(kind: str) -> Server:
    """Start a server of ``kind`` for a test. When its binary is missing the test is skipped (and the run's
    summary says so), except with CI=true, where it fails: CI installs every server, so a missing one is
    a broken CI, not a reason to skip."""
    import pytest

    try:
        return Server(kind).start()
    except ServerUnavailable as exc:
        MISSING[kind] = str(exc)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the {kind} server is missing: {exc}", pytrace=False)
        pytest.skip(f"SERVER MISSING: {exc}")


# -- the state file (shared by .ci/servers.sh, the test fixtures and the benchmark) ---------------------------
def read_state(path: Path = DEFAULT_STATE) -> dict[str, dict[str, object]]:
    """Live servers recorded in the state file (entries whose PID is gone are left out)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    live: dict[str, dict[str, object]] = {}
    if isinstance(raw, dict):
        for kind, entry in raw.items():  # pyright: ignore[reportUnknownVariableType]
            if isinstance(entry, dict) and isinstance(entry.get("pid"), int) and _alive(entry["pid"]):  # pyright: ignore
                live[str(kind)] = entry  # pyright: ignore[reportUnknownArgumentType]
    return live


def start_all(path: Path = DEFAULT_STATE) -> dict[str, Server]:
    path.parent.mkdir(parents=True, exist_ok=True)
    running = read_state(path)
    servers: dict[str, Server] = {}
    state: dict[str, dict[str, object]] = dict(running)
    for kind in KINDS:
        if kind in running:
            print(f"servers: {kind} already running (pid {running[kind]['pid']}) at {running[kind]['url']}")
            continue
        server = Server(kind).start()
        servers[kind] = server
        state[kind] = server.to_json()
        path.write_text(json.dumps(state, indent=2))
        print(f"servers: {kind} up (pid {server.pid}) at {server.url}")
    env_lines = [f"{ENV_URLS[k]}={v['url']}" for k, v in state.items() if k in ENV_URLS]
    path.with_suffix(".env").write_text("\n".join(env_lines) + "\n")
    return servers


def stop_all(path: Path = DEFAULT_STATE) -> None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"servers: no state file at {path}; nothing to stop")
        return
    for kind, entry in raw.items():
        server = Server(kind, port=int(entry["port"]), data_dir=str(entry["data_dir"]), pid=entry.get("pid"))
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
        print(f"servers: {kind} (pid {entry.get('pid')}) stopped")
    path.unlink(missing_ok=True)
    path.with_suffix(".env").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    if args.action == "start":
        try:
            start_all(args.state)
        except Exception:
            stop_all(args.state)
            raise
    elif args.action == "stop":
        stop_all(args.state)
    else:
        state = read_state(args.state)
        for kind in KINDS:
            entry = state.get(kind)
            print(
                f"{kind}: {'pid ' + str(entry['pid']) + ' ' + str(entry['url']) if entry else 'not running'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
