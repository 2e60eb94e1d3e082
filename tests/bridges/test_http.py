"""HTTPEventBridge over real HTTP (httpx client, hypercorn server on asyncio and trio): upstream's status
codes, reading upstream-written events, named errors, backpressure, two processes."""

from __future__ import annotations

import json
import socket

import anyio
import httpx
import pytest
from _interop import INTEROP
from peer import OTHER_BACKEND, Collector, Ping, Pong, spawn, until

from bubus_anyio.bridges import BridgeConnectError, BridgeHTTPStatusError, BridgeSendError, HTTPEventBridge

pytestmark = pytest.mark.anyio

INTEROP_EVENT = json.loads((INTEROP / "py-2.3.2/fresh_flat_object_result.json").read_text())


def listening(
    listen_on: str = "http://127.0.0.1:0/events", **options: object
) -> tuple[HTTPEventBridge, Collector]:
    got = Collector()
    bridge = HTTPEventBridge(listen_on=listen_on, **options)  # type: ignore[arg-type]
    bridge.on("*", got)  # before entering: serving once `async with` returns
    return bridge, got


async def test_round_trip() -> None:
    receiver, got = listening()
    async with receiver:
        url = receiver.http.listening_url
        assert url is not None and url.endswith("/events") and ":0/" not in url
        async with HTTPEventBridge(send_to=url) as sender:
            await sender.emit(Ping(n=1))
            await sender.emit(Ping(n=2))
            await got.wait_for(2)
    assert got.ns == [1, 2]


async def test_status_codes_are_upstreams() -> None:
    receiver, got = listening("http://127.0.0.1:0/in?token=abc")
    async with receiver, httpx.AsyncClient() as client:
        url = receiver.http.listening_url
        assert url is not None and url.endswith("/in?token=abc")
        base = url.split("/in")[0]
        good = Ping(n=1).to_json()
        accepted = await client.post(url, content=good)
        assert (accepted.status_code, accepted.text) == (202, "accepted")
        assert accepted.headers["connection"] == "close"
        assert (await client.get(url)).status_code == 405
        assert (await client.put(url, content=good)).status_code == 405
        assert (await client.post(f"{base}/in", content=good)).status_code == 404  # the query is part of it
        assert (await client.post(f"{base}/other?token=abc", content=good)).status_code == 404
        assert (await client.post(url, content=b"not json")).status_code == 400
        assert (await client.post(url, content=b"[1]")).status_code == 400
        await got.wait_for(1)
    assert got.ns == [1]


async def test_oversize_body_is_a_bad_request() -> None:
    receiver, _ = listening(max_body_bytes=1000)
    async with receiver, httpx.AsyncClient() as client:
        url = receiver.http.listening_url
        assert url is not None
        response = await client.post(url, content=b'{"x": "' + b"y" * 5000 + b'"}')
        assert response.status_code == 400


async def test_reads_what_upstream_posts() -> None:
    receiver, got = listening()
    async with receiver, httpx.AsyncClient() as client:
        url = receiver.http.listening_url
        assert url is not None
        body = json.dumps(INTEROP_EVENT, separators=(",", ":"))
        response = await client.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 202
        [event] = await got.wait_for(1)
    assert event.event_type == INTEROP_EVENT["event_type"]


async def test_non_2xx_answer_is_a_named_error() -> None:
    receiver, _ = listening("http://127.0.0.1:0/right")
    async with receiver:
        url = receiver.http.listening_url
        assert url is not None
        async with HTTPEventBridge(send_to=url.replace("/right", "/wrong")) as sender:
            with pytest.raises(BridgeHTTPStatusError, match="404") as caught:
                await sender.emit(Ping(n=1))
    assert caught.value.status_code == 404
    assert isinstance(caught.value, BridgeSendError)


async def test_nobody_listening_is_a_named_error_after_the_timeout() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with HTTPEventBridge(send_to=f"http://127.0.0.1:{port}/x", timeout=0.3) as sender:
        with pytest.raises(BridgeSendError, match=r"timeout=0\.3"):
            await sender.emit(Ping(n=1))


async def test_sender_retries_until_the_listener_is_up() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/late"
    receiver, got = listening(url)
    async with HTTPEventBridge(send_to=url, timeout=10) as sender, anyio.create_task_group() as tg:
        tg.start_soon(sender.emit, Ping(n=1))  # refused at first: retried with backoff
        await anyio.wait_all_tasks_blocked()  # refused, now in its backoff sleep
        async with receiver:
            await got.wait_for(1)


async def test_bind_error_is_a_named_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        receiver, _ = listening(f"http://127.0.0.1:{port}/")
        with pytest.raises(BridgeConnectError, match=str(port)):
            async with receiver:
                pass


async def test_emit_without_send_to_is_a_named_error() -> None:
    receiver, _ = listening()
    async with receiver:
        with pytest.raises(BridgeSendError, match="no send_to"):
            await receiver.emit(Ping(n=1))


async def test_urls_are_checked() -> None:
    with pytest.raises(ValueError, match="send_to"):
        HTTPEventBridge(send_to="unix:///tmp/x")
    with pytest.raises(ValueError, match="listen_on"):
        HTTPEventBridge(listen_on="https://127.0.0.1:1/")


async def test_slow_consumer_holds_requests_back() -> None:
    release = anyio.Event()
    got = Collector()

    async def slow(event: Ping) -> None:
        await release.wait()
        got(event)

    receiver = HTTPEventBridge(listen_on="http://127.0.0.1:0/", inbound_buffer=2, request_buffer=1)
    receiver.on(Ping, slow)
    sent = 0
    async with receiver:
        url = receiver.http.listening_url
        assert url is not None
        async with HTTPEventBridge(send_to=url) as sender, anyio.create_task_group() as tg:

            async def produce() -> None:
                nonlocal sent
                for n in range(10):
                    await sender.emit(Ping(n=n))
                    sent += 1

            tg.start_soon(produce)
            await until(lambda: receiver.statistics().unfinished == 2 and sent >= 3)
            await anyio.wait_all_tasks_blocked()  # client and server share this event loop
            assert sent <= 4  # 2 unfinished, 1 queued, 1 taken by the reader: the next POST waits
            release.set()
        await got.wait_for(10)
    assert got.ns == list(range(10))


async def test_two_processes_on_different_backends_round_trip(anyio_backend: str) -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        requests = f"http://127.0.0.1:{a.getsockname()[1]}/ping"
        replies = f"http://127.0.0.1:{b.getsockname()[1]}/pong"
    got = Collector()
    inbound = HTTPEventBridge(listen_on=replies)
    inbound.on(Pong, got)
    async with inbound:
        async with (
            spawn(OTHER_BACKEND[anyio_backend], "http", requests, "echo", 5, replies) as peer,
            HTTPEventBridge(send_to=requests) as out,
        ):
            for n in range(5):
                await out.emit(Ping(n=n))
            await got.wait_for(5, timeout=30)
            assert await peer.wait() == 0
    assert got.ns == [0, 1, 2, 3, 4]


def test_bridges_never_entered_leave_nothing_unclosed() -> None:
    import gc

    from bubus_anyio.bridges import SocketEventBridge

    HTTPEventBridge(send_to="http://127.0.0.1:1/", listen_on="http://127.0.0.1:0/")
    SocketEventBridge("/tmp/never-used.sock")
    gc.collect()  # an unclosed stream would warn here, and warnings are errors
