"""The broker harness itself: start/wait/stop by PID, crash and restart with the same data, state file,
and what happens when a server binary is missing (skip, or fail under CI=true)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import servers


def redis_command(port: int, *args: str) -> bytes:
    frame = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(frame.encode())
        return conn.recv(1024)


def test_crash_and_restart_keeps_redis_data() -> None:
    if servers.binary("redis") is None:
        pytest.skip("SERVER MISSING: redis-server")
    server = servers.Server("redis").start()
    try:
        pid = server.pid
        assert redis_command(server.port, "SET", "k", "v") == b"+OK\r\n"
        server.kill()
        assert pid is not None and not servers._alive(pid)  # pyright: ignore[reportPrivateUsage]
        assert not server.answers()
        server.start()
        assert server.pid != pid
        assert redis_command(server.port, "GET", "k") == b"$1\r\nv\r\n"  # the append-only file survived
    finally:
        server.cleanup()


def test_state_file_start_and_stop_by_pid(tmp_path: Path) -> None:
    if servers.binary("nats") is None:
        pytest.skip("SERVER MISSING: nats-server")
    state = tmp_path / "state.json"
    server = servers.Server("nats").start()
    try:
        state.write_text(json.dumps({"nats": server.to_json()}))
        assert servers.read_state(state)["nats"]["url"] == server.url
        servers.stop_all(state)
        assert not state.exists()
        assert not server.answers()
        assert servers.read_state(state) == {}
    finally:
        server.cleanup()


def test_missing_binary_skips_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "binary", lambda kind: None)
    monkeypatch.setattr(servers, "MISSING", {})
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="SERVER MISSING"):
        servers.start_or_skip("redis")
    assert "redis-server" in servers.MISSING["redis"]  # listed in the run's summary


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "binary", lambda kind: None)
    monkeypatch.setattr(servers, "MISSING", {})
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        servers.start_or_skip("nats")
