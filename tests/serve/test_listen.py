"""The gateway's listening socket: every connection it accepts sends small writes at once."""

from __future__ import annotations

import asyncio
import socket

from protege.serve import listen


def test_accepted_connections_have_nagle_off():
    """A reply goes out as headers then body; with Nagle on, the body waits for the client's
    delayed ACK (~40 ms on Linux). asyncio turns it off only for sockets made with
    proto=IPPROTO_TCP, which `socket.create_server` does not make, so `listen` must."""
    seen: list[int] = []

    async def main() -> None:
        sock = listen("127.0.0.1", 0)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
