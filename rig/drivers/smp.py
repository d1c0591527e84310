"""SMPDriver: MCUmgr over the board's console with smpclient - image list, upload, test, confirm, reset.

smpclient's serial transport opens `serial.Serial(port=<device path>)`. A rack console is often an
rfc2217:// URL (ser2net on an exporter, or the virtual rack), so the transport here opens any
pyserial URL with `serial_for_url`; a device path works unchanged. The console driver lends its
port for the length of one operation, as for esptool. smpclient is asyncio; each public method
runs one short event loop, so callers (tests, the CLI) stay synchronous.
"""

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from rig.errors import RigError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SlotState:
    slot: int
    version: str
    hash: str  # hex SHA-256 of the image, as MCUboot's TLV holds it
    active: bool
    confirmed: bool
    pending: bool
    permanent: bool


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

        from rig.drivers.smp_transport import UrlSerialTransport

        async def session():
            with self.console.borrowed() as url:
                client = SMPClient(UrlSerialTransport(), url, timeout_s=self.timeout)
                try:
                    await client.connect()
                except TimeoutError as exc:
                    raise RigError(f"SMP: cannot open {url}: {exc}") from exc
                try:
                    return await work(client)
                except TimeoutError:
                    raise RigError(f"SMP: no reply from the board on {url} within {self.timeout:g} s; "
                                   "is the app (not the bootloader) running?") from None
                finally:
                    await client.disconnect()

        return asyncio.run(session())

    @staticmethod
    async def _request(client, request):
        from smpclient.generics import error, success

        response = await client.request(request)
        if error(response):
            raise RigError(f"SMP: {type(request).__name__} refused by the board: {response}")
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
        """Upload a signed image to the secondary slot; return its SHA-256 (hex) for `test`/`confirm`.

        `slot` is MCUmgr's image number (0 for single-image MCUboot), not the flash slot.
        """
        from smpclient.exceptions import SMPUploadError

        async def work(client):
            try:
                async for offset in client.upload(image, slot=slot, first_timeout_s=max(self.timeout, 20.0)):
                    if progress:
                        progress(offset, len(image))
            except SMPUploadError as exc:
                raise RigError(f"SMP: upload refused: {exc}") from exc

        self._run(work)
        return hashlib.sha256(image).hexdigest()

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
