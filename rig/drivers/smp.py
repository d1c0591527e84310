"""SMPDriver: MCUmgr over the board's console with smpclient - image list, upload, test, confirm, reset.

smpclient's serial transport opens `serial.Serial(port=<device path>)`. A rack console is often an
rfc2217:// URL (ser2net on an exporter, or the virtual rack), so the transport is handed the
console's own open port instead, lent for the length of one operation as for esptool. smpclient
is asyncio; each public method runs one short event loop, so callers stay synchronous.
"""

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

import attr
import serial
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from rig.drivers.strategy import BOOT_LINE
from rig.errors import BoardRefused, RigError

Progress = Callable[[int, int], None]
BOOTED = re.compile(BOOT_LINE.encode())


@dataclass(frozen=True)
class SlotState:
    slot: int
    version: str
    hash: str  # hex SHA-256 of the image, as MCUboot's TLV holds it
    active: bool
    confirmed: bool
    pending: bool
    permanent: bool


class _BootWatch:
    """The lent console port, watched for the app's boot line while smpclient reads it: a board
    that restarts (power lost, reset) never answers the request it had, so the session ends at
    once instead of after the reply timeout - from the line a bench sees on the console too."""

    def __init__(self, port):
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_tail", b"")

    def read_all(self) -> bytes:
        data = self._port.read_all() or b""
        seen = self._tail + data
        object.__setattr__(self, "_tail", seen[-200:])  # a boot line may come in pieces
        if (m := BOOTED.search(seen)) is not None and b"\n" in seen[m.end():]:
            raise serial.SerialException("the board restarted before it answered (its console: "
                                         f"{m.group(0).decode(errors='replace').strip()!r})")
        return data

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        setattr(self._port, name, value)


# The last upload reply's `match: false`: the SHA-256 of what the board wrote is not the image's.
MISMATCH = "upload match=false: the image the board wrote has another SHA-256"


def error_text(reply) -> str:
    """An SMP error reply in the names smpmgr shows for it: the group and its error for SMP v2
    (`IMG_MGMT INVALID_HASH`, from smp's IMG_MGMT_ERR.INVALID_HASH), the general code for v1
    (`MGMT EINVAL`) with the board's reason if it gave one. Anything else as it is."""
    from smp.error import ErrorV1, ErrorV2

    if isinstance(reply, ErrorV2):
        rc = reply.err.rc
    elif isinstance(reply, ErrorV1):
        rc = reply.rc
    else:
        return str(reply)
    # smp names each group's codes <GROUP>_ERR or <GROUP>_RET_RC (IMG_MGMT_ERR, OS_MGMT_RET_RC); v1's are MGMT_ERR
    text = f"{re.sub(r'_(ERR|RET_RC)$', '', type(rc).__name__)} {rc.name}"
    reason = getattr(reply, "rsn", None)
    return f"{text}: {reason}" if reason else text


@target_factory.reg_driver
@attr.s(eq=False)
class SMPDriver(Driver):
    """Image management over MCUmgr SMP.

    Args:
        timeout (float): seconds to wait for each SMP reply
    """

    bindings = {"console": "RigConsoleDriver"}
    timeout = attr.ib(default=5.0, validator=attr.validators.instance_of(float))

    def _run(self, work):
        # smpclient (with pydantic) takes half a second to import: only when SMP is used.
        from smpclient import SMPClient
        from smpclient.transport import SMPTransportDisconnected
        from smpclient.transport.serial import SMPSerialTransport

        async def session():
            with self.console.lent() as port:
                transport = SMPSerialTransport()
                # smpclient opens `serial.Serial(device path)` itself; give it the console's open
                # port instead (any pyserial URL, and no reconnect that would lose boot lines).
                transport._conn = _BootWatch(port)  # type: ignore[misc]  # smpclient marks it Final
                client = SMPClient(transport, self.console.url, timeout_s=self.timeout)
                try:
                    await client.connect()
                    return await work(client)
                except TimeoutError:
                    raise RigError(f"SMP: no reply from the board on {self.console.url} within "
                                   f"{self.timeout:g} s; is the app (not the bootloader) running?") from None
                except SMPTransportDisconnected as exc:
                    raise RigError(f"SMP: {exc}") from None
                finally:
                    await client.disconnect()

        return asyncio.run(session())

    @staticmethod
    async def _request(client, request):
        from smpclient.generics import error, success

        response = await client.request(request)
        if error(response):
            raise BoardRefused(f"SMP: {type(request).__name__}", error_text(response))
        assert success(response)
        return response

    @Driver.check_active
    @step()
    def image_list(self) -> list[SlotState]:
        from smpclient.requests.image_management import ImageStatesRead

        async def work(client):
            return await self._request(client, ImageStatesRead())

        response = self._run(work)
        return [SlotState(s.slot, s.version, bytes(s.hash or b"").hex(), bool(s.active), bool(s.confirmed),
                          bool(s.pending), bool(s.permanent)) for s in response.images]

    @Driver.check_active
    @step()
    def upload(self, image: bytes, slot: int = 0, progress: Progress | None = None) -> str:
        """Upload a signed MCUboot image to the secondary slot; return its hash (hex) for `test`.

        The hash is the image's SHA-256 TLV, the one MCUboot and `image_list` report. `slot` is
        MCUmgr's image number (0 for single-image MCUboot), not the flash slot. `image` may also be
        a rig delta container, which rig's firmware applies while it arrives (docs/firmware.md):
        the hash is then the one the board lists for the image it rebuilt in slot 1.
        """
        from smpclient.exceptions import SMPUploadError

        from rig.delta import container
        from rig.image import mcuboot

        is_delta = image[: len(container.MAGIC)] == container.MAGIC
        image_hash = None if is_delta else mcuboot.parse(image).find(mcuboot.TLV_SHA256)[0].value.hex()

        async def work(client):
            done = 0
            try:
                async for done in client.upload(image, slot=slot, first_timeout_s=max(self.timeout, 20.0)):
                    if progress:
                        progress(done, len(image))
            except SMPUploadError as exc:  # the board's error reply, or smpclient's own complaint
                if done == len(image):
                    # Every chunk taken: what smpclient checks after the last one is the reply's `match`,
                    # whose complaint carries the reply's repr - say what the board said instead.
                    raise BoardRefused("SMP: upload", MISMATCH) from exc
                raise BoardRefused("SMP: upload", error_text(exc.args[0] if exc.args else exc)) from exc

        self._run(work)
        if image_hash is None:
            rebuilt = [state.hash for state in self.image_list() if state.slot == 1]
            if not rebuilt:
                raise RigError("SMP: the board took the delta container but lists no image in slot 1")
            image_hash = rebuilt[0]
        return image_hash

    @Driver.check_active
    @step(args=["image_hash"])
    def test(self, image_hash: str) -> None:
        """Mark the uploaded image for a test boot: MCUboot swaps it in at the next reset, once."""
        self._state_write(bytes.fromhex(image_hash), confirm=False)

    @Driver.check_active
    @step()
    def confirm(self, image_hash: str | None = None) -> None:
        """Make an image permanent (default: the running one)."""
        self._state_write(bytes.fromhex(image_hash) if image_hash else None, confirm=True)

    def _state_write(self, image_hash: bytes | None, confirm: bool) -> None:
        from smpclient.requests.image_management import ImageStatesWrite

        async def work(client):
            await self._request(client, ImageStatesWrite(hash=image_hash, confirm=confirm))

        self._run(work)

    @Driver.check_active
    @step()
    def reset(self) -> None:
        """Ask the app to reset itself (MCUmgr OS reset; reset cause `software`)."""
        from smpclient.requests.os_management import ResetWrite

        async def work(client):
            await self._request(client, ResetWrite())

        self._run(work)

    @Driver.check_active
    def echo(self, text: str) -> str:
        from smpclient.requests.os_management import EchoWrite

        async def work(client):
            return (await self._request(client, EchoWrite(d=text))).r

        return self._run(work)
