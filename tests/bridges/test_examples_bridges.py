"""The two-process bridge example works as its docstring says, over each embedded transport."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bbx", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def argv(script: str, transport: str, where: Path | str, backend: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(EXAMPLES / script),
        "--transport",
        transport,
        "--path",
        str(where),
        "--backend",
        backend,
        *extra,
    ]


async def run_consumer_then_producer(transport: str, where: Path, backend: str, *extra: str) -> list[str]:
    consumer = argv("bridge_consumer.py", transport, where, backend, "--count", "3", *extra)
    async with await anyio.open_process(consumer) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(30):
            assert (await lines.receive_until(b"\n", 4096)).startswith(b"consumer ready")
            await anyio.run_process(argv("bridge_producer.py", transport, where, backend, "--count", "3"))
            received = [(await lines.receive_until(b"\n", 4096)).decode() for _ in range(3)]
            assert await process.wait() == 0
    return received


@pytest.mark.parametrize(
    ("transport", "name"), [("jsonl", "e.jsonl"), ("sqlite", "e.db"), ("socket", "e.sock")]
)
async def test_producer_reaches_consumer(
    transport: str, name: str, short_dir: Path, anyio_backend: str
) -> None:
    received = await run_consumer_then_producer(transport, short_dir / name, anyio_backend)
    assert [line.split(" ", 3)[:3] for line in received] == [
        ["received", "OrderPlaced", "{'order_id':"],
    ] * 3
    assert [line.split("'order_id': ")[1][:5] for line in received] == ["'o-0'", "'o-1'", "'o-2'"]


async def test_durable_consumer_gets_what_it_missed(short_dir: Path, anyio_backend: str) -> None:
    where = short_dir / "d.jsonl"
    await run_consumer_then_producer("jsonl", where, anyio_backend, "--durable")  # saves its offset
    with anyio.fail_after(30):  # the producer runs while no consumer does
        await anyio.run_process(argv("bridge_producer.py", "jsonl", where, anyio_backend, "--count", "3"))
        done = await anyio.run_process(
            argv("bridge_consumer.py", "jsonl", where, anyio_backend, "--count", "3", "--durable")
        )
    assert done.stdout.decode().count("received OrderPlaced") == 3


@pytest.mark.parametrize("transport", ["redis", "nats"])
@pytest.mark.parametrize("durable", [False, True], ids=["fire-and-forget", "durable"])
async def test_server_transport_flags(
    transport: str, durable: bool, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    url = request.getfixturevalue(f"{transport}_url")  # a live server (see conftest), or a loud skip
    extra = ["--durable"] if durable else []
    consumer = [*argv("bridge_consumer.py", transport, url, anyio_backend, "--count", "3"), *extra]
    producer = [*argv("bridge_producer.py", transport, url, anyio_backend, "--count", "3"), *extra]
    async with await anyio.open_process(consumer) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(30):
            assert (await lines.receive_until(b"\n", 4096)).startswith(b"consumer ready")
            await anyio.run_process(producer)
            received = [(await lines.receive_until(b"\n", 4096)).decode() for _ in range(3)]
            assert await process.wait() == 0
    assert all(line.startswith("received OrderPlaced") for line in received)
