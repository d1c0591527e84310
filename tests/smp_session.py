"""An smpclient session on a board's console pty: how the tests talk MCUmgr SMP to the firmware."""

import asyncio

from smpclient import SMPClient
from smpclient.transport.serial import SMPSerialTransport


def smp_session(pty: str, work, timeout: float = 20.0):
    """`await work(client)` with an smpclient connected to `pty`, and its result."""

    async def session():
        client = SMPClient(SMPSerialTransport(), pty, timeout_s=timeout)
        await client.connect()
        try:
            return await work(client)
        finally:
            await client.disconnect()

    return asyncio.run(session())
