"""A small HTTP forwarder on 127.0.0.1 that adds a fixed delay to every HTTP request, to play a distant S3.

Real S3 is tens of milliseconds away; a local moto server is microseconds away. Put this proxy in front of it and
every request (not every connection: keep-alive connections carry many requests) waits `delay` seconds before it
is forwarded, so clients that overlap requests win, as they do against real S3.

Bounded: one thread runs an asyncio loop for all connections (no thread per connection), at most `max_connections`
connections are open at once (more are refused), and each direction of a connection buffers at most `CHUNK` bytes
beyond the socket buffers (writes wait for the peer to drain). Run as a process it stops itself when its standard
input closes (its parent is gone) or after `--max-seconds`:

    python benchmarks/latency_proxy.py --target http://127.0.0.1:5000 --delay-ms 20   # prints "PORT <n>"
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from urllib.parse import urlsplit

CHUNK = 256 * 1024
MAX_HEAD = 64 * 1024


class LatencyProxy:
    """Forward 127.0.0.1:<port> to `target` (host, port), delaying each HTTP request head by `delay` seconds."""

    def __init__(self, target: tuple[str, int], delay: float = 0.02, *, port: int = 0, max_connections: int = 1024):
        self.target = target
        self.delay = delay
        self.port = port
        self.max_connections = max_connections
        self.requests = 0
        self.connections = 0
        self.refused = 0
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------------------------
    async def start_async(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> LatencyProxy:
        """Run the proxy's loop in one daemon thread; returns once it listens (see `.port`)."""
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start_async())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._close())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- one connection ----------------------------------------------------------------------------------------
    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            self.refused += 1
            c_writer.close()
            return
        self._open += 1
        self.connections += 1
        s_writer = None
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target, limit=MAX_HEAD)
            up = asyncio.ensure_future(self._requests(c_reader, s_writer))
            down = asyncio.ensure_future(self._pipe(s_reader, c_writer))
            # Either side ending ends the connection (HTTP/1.1 has no half-open use here).
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        except OSError:
            pass
        finally:
            self._open -= 1
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server: wait `delay` before each request head, then forward head and body as they come."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            self.requests += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(head)
            length, chunked = _body_framing(head)
            if chunked:
                await self._chunked(reader, writer)
            else:
                await _copy(reader, writer, length)
            await writer.drain()

    async def _chunked(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    writer.write(trailer)
                    if trailer == b"\r\n":
                        return
            await _copy(reader, writer, size + 2)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Server to client: bytes as they come."""
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


def _body_framing(head: bytes) -> tuple[int, bool]:
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise ConnectionError("peer closed inside a request body")
        n -= len(data)
        writer.write(data)
        await writer.drain()


async def _serve_until_stdin_closes(proxy: LatencyProxy, max_seconds: float) -> None:
    await proxy.start_async()
    print(f"PORT {proxy.port}", flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    with contextlib.suppress(Exception):  # stdin may be a file or closed: then only the time limit stops us
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1024) or done.done() or done.set_result(0))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done, max_seconds)
    await proxy._close()
    print(f"{proxy.requests} requests delayed over {proxy.connections} connections"
          + (f", {proxy.refused} connections refused" if proxy.refused else ""), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="URL of the server to forward to, e.g. http://127.0.0.1:5000")
    p.add_argument("--delay-ms", type=float, default=20.0, help="delay added to every HTTP request (default 20)")
    p.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1 (default: a free one)")
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--max-seconds", type=float, default=6 * 3600, help="stop after this long in any case")
    args = p.parse_args(argv)
    target = urlsplit(args.target)
    proxy = LatencyProxy((target.hostname, target.port or 80), args.delay_ms / 1000, port=args.port,
                         max_connections=args.max_connections)
    asyncio.run(_serve_until_stdin_closes(proxy, args.max_seconds))


if __name__ == "__main__":
    main()
