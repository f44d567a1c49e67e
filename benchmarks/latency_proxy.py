"""A TCP forwarder on 127.0.0.1 that plays a distant S3: every chunk of bytes arrives RTT/2 later in each direction.

Real S3 is tens of milliseconds away; a local server is microseconds away. This proxy works on TCP, not HTTP: it
parses nothing (so it costs little CPU and keeps every keep-alive connection as the client made it), delivers each
chunk it reads `rtt / 2` seconds after it arrived, in order, in both directions, and charges one round trip for each
new connection (the TCP handshake). A request and its answer therefore cost one RTT, as across a real network.

Bounded: one thread runs an asyncio loop for all connections, at most `max_connections` are open at once (more are
refused), and each direction of a connection holds at most `WINDOW` bytes in flight (a TCP window). Run as a
process it stops itself when its standard input closes (its parent is gone) or after `--max-seconds`:

    python benchmarks/latency_proxy.py --target http://127.0.0.1:8333 --rtt-ms 20   # prints "PORT <n>"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from urllib.parse import urlsplit

CHUNK = 256 * 1024
WINDOW = 8 * 1024 * 1024


class LatencyProxy:
    """Forward 127.0.0.1:<port> to `target` (host, port), each chunk delayed rtt/2 in each direction."""

    def __init__(self, target: tuple[str, int], rtt: float = 0.02, *, port: int = 0, max_connections: int = 1024):
        self.target = target
        self.rtt = rtt
        self.port = port
        self.max_connections = max_connections
        self.connections = 0
        self.refused = 0
        self.bytes_up = 0  # client to server
        self.bytes_down = 0
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------------------------
    async def start_async(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, limit=CHUNK)
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
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:  # open connections: end them, so nothing is left pending
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server:
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
            await asyncio.sleep(self.rtt)  # the handshake's round trip
            s_reader, s_writer = await asyncio.open_connection(*self.target, limit=CHUNK)
            await asyncio.gather(self._pipe(c_reader, s_writer, "up"), self._pipe(s_reader, c_writer, "down"))
        except (OSError, asyncio.CancelledError):  # cancelled: the proxy is stopping
            pass
        finally:
            self._open -= 1
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        """Bytes from reader to writer, each chunk delivered rtt/2 after it arrived, in order; end of stream too."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        room = asyncio.Semaphore(WINDOW // CHUNK)  # chunks in flight: at most WINDOW bytes

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    with contextlib.suppress(OSError, RuntimeError):
                        writer.write_eof()
                    return
                room.release()
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                await room.acquire()
                try:
                    data = await reader.read(CHUNK)
                except ConnectionError:
                    data = b""
                if not data:
                    break
                if direction == "up":
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                queue.put_nowait((loop.time() + self.rtt / 2, data))
            queue.put_nowait((loop.time() + self.rtt / 2, None))
            await delivering
        except (ConnectionError, OSError):
            delivering.cancel()
            writer.close()

    def stats(self) -> str:
        return (
            f"{self.connections} connections delayed {self.rtt * 1000:g} ms each round trip, "
            f"{self.bytes_up / 1024**2:.1f} MiB up, {self.bytes_down / 1024**2:.1f} MiB down"
            + (f", {self.refused} connections refused" if self.refused else "")
        )


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
    print(proxy.stats(), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="URL of the server to forward to, e.g. http://127.0.0.1:8333")
    p.add_argument("--rtt-ms", type=float, default=20.0, help="round trip time to add (default 20)")
    p.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1 (default: a free one)")
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--max-seconds", type=float, default=6 * 3600, help="stop after this long in any case")
    args = p.parse_args(argv)
    target = urlsplit(args.target)
    proxy = LatencyProxy(
        (target.hostname, target.port or 80), args.rtt_ms / 1000, port=args.port, max_connections=args.max_connections
    )
    asyncio.run(_serve_until_stdin_closes(proxy, args.max_seconds))


if __name__ == "__main__":
    main()
