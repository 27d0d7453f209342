"""tbx's egress forwarder, inside a server container (baked in as /opt/tbx-launch/egress-forward).

    python3 -I -S egress-forward PORT SOCKET

The container is on network none. This listens on 127.0.0.1:PORT, the server's proxy
address, and carries each connection byte for byte over the Unix socket SOCKET (mounted
from the host) to the toolbox gateway's allow-list proxy, which decides everything: this
knows no host names and checks nothing, so a hostile server gains nothing by talking to
it. Once it listens it forks and the parent exits 0, so the server starts only when its
proxy address answers. Standard library only: it runs on the image's python3.
"""

import asyncio
import contextlib
import os
import socket
import sys

CHUNK = 65536
UNREACHABLE = (
    "tbx: this server reaches the network only through its toolbox gateway's allow-list proxy, "
    "and the gateway is not running; start it ('tbx gateway serve', or the console's Gateway)\n"
)


def unreachable_response():
    body = UNREACHABLE.encode()
    head = ("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close: the other way may still be talking
    except (ConnectionError, OSError):
        writer.close()


async def carry(path, client_reader, client_writer):
    # asyncio turns Nagle off only for sockets made with proto IPPROTO_TCP, which an
    # accepted one of this listener is not: without this, small writes wait for delayed
    # ACKs (40 ms stalls in a 1 MB download through the proxy).
    client_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        proxy_reader, proxy_writer = await asyncio.open_unix_connection(path)
    except OSError:
        client_writer.write(unreachable_response())
        with contextlib.suppress(ConnectionError, OSError):
            await client_writer.drain()
        client_writer.close()
        return
    try:
        await asyncio.gather(pipe(client_reader, proxy_writer), pipe(proxy_reader, client_writer))
    finally:
        proxy_writer.close()
        client_writer.close()


async def serve(listener, path):
    server = await asyncio.start_server(lambda r, w: carry(path, r, w), sock=listener)
    async with server:
        await server.serve_forever()


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    if os.fork():
        os._exit(0)  # listening: the launcher may start the server
    os.setsid()
    asyncio.run(serve(listener, path))


if __name__ == "__main__":
    main()
