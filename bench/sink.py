"""An HTTP server that answers every request `200 OK` with an empty body, keeping connections open.

bench/sms.py points Kannel's delivery reports (the dlr-url smsbox calls for every message) at it in both phases of
the Kannel scenario: smsbox must not wait on a slow or absent callback server (a refused connection slowed
sendsms fivefold), and the reports themselves are not what the scenario measures.

    .venv/bin/python bench/sink.py PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

HOST = "127.0.0.1"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n"
# A request for this path is answered with the number of requests answered so far, so that the benchmark can wait
# until the callbacks of one phase are over before it starts the next.
COUNT_PATH = b"/_count"
HEADER_END = b"\r\n\r\n"
CONTENT_LENGTH = b"content-length:"


answered = 0


def counted() -> bytes:
    body = str(answered).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Every request on the connection, in turn: read its head (and body, if it says it has one), answer 200."""
    global answered
    with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        while True:
            head = await reader.readuntil(HEADER_END)
            length = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(CONTENT_LENGTH):
                    length = int(line[len(CONTENT_LENGTH) :].strip() or 0)
            if length:
                await reader.readexactly(length)
            if head.split(b" ", 2)[1:2] == [COUNT_PATH]:
                writer.write(counted())
            else:
                answered += 1
                writer.write(ANSWER)
            await writer.drain()
    writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(answer, HOST, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1])))
