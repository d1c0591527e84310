"""smpclient's serial transport on any pyserial URL, not only a device path."""

import serial
from smpclient.transport.serial import SMPSerialTransport


class UrlSerialTransport(SMPSerialTransport):
    """smpclient's serial transport on any pyserial URL (rfc2217://, socket://, or a device path)."""

    async def connect(self, address: str, timeout_s: float) -> None:
        # The base class keeps one serial.Serial for the transport's life; swap in the class the
        # URL needs (rfc2217.Serial for rfc2217://), with the settings the base class chose.
        if "://" in address:
            settings = self._conn.get_settings()
            self._conn = serial.serial_for_url(address, do_not_open=True)
            self._conn.apply_settings(settings)
        await super().connect(address, timeout_s)
