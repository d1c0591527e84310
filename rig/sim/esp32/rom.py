"""The ESP32's serial ROM loader (download mode), and the flasher stub esptool uploads into it.

Protocol (esptool loader.py, docs "Serial Protocol"): SLIP-framed packets. A command is
`<BBHI` direction 0, opcode, data length, checksum, then data; a response is direction 1, the same
opcode, data length, a 32-bit value, then data ending in status bytes: four from the ESP32 ROM
(status, error, 0, 0 - error codes 0x05 bad message, 0x07 checksum, 0x08 flash write...), two
from the stub (status = its error code 0xC0.., then 0). The checksum of *_DATA commands is the XOR
of the payload seeded with 0xEF.

The stub shortcut: esptool uploads its flasher stub (Xtensa code) with MEM_BEGIN/MEM_DATA and
starts it with MEM_END. A virtual chip cannot execute Xtensa code, so we take the upload as the
stub, answer "OHAI" as the stub does when it starts, and from then on serve the stub's command
set (two status bytes, 16 KiB blocks, ERASE_FLASH/ERASE_REGION/READ_FLASH with acks, raw MD5).
The ROM programs a download block before it answers; the stub answers as soon as the block is in
and programs it while the next one arrives (a flash error then fails the next command of the
download), which is why esptool gives each block's reply the previous block's time.
Any code uploaded with MEM_END is taken for the stub; `esptool load-ram` of other code is not
modelled. Flash encryption (encrypted writes) is not modelled and is refused.
"""

import hashlib
import struct
import zlib

from rig.sim.esp32 import slip
from rig.sim.esp32.efuse import Efuses
from rig.sim.esp32.flashwriter import FlashWriter, erase_commands
from rig.sim.esp32.registers import STRAP_DOWNLOAD, Registers
from rig.sim.flash import FlashError

ROM_DATE = "ets Jul 29 2019 12:21:46"  # the ESP32 ECO3 (v3.x) mask ROM
# docs/console.md reset causes -> the ESP32 ROM's reset reason code and name. The DevKit's EN pin
# is chip power enable, so a pin reset is a power-on reset to the ROM.
RESET_REASONS = {
    "power-on": (0x01, "POWERON_RESET"),
    "pin": (0x01, "POWERON_RESET"),
    "software": (0x0C, "SW_CPU_RESET"),
    "watchdog": (0x07, "TG0WDT_SYS_RESET"),
    "brownout": (0x0F, "RTCWDT_BROWN_OUT_RESET"),
}

SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
SYNC_REPLIES = 8  # the ROM answers each SYNC eight times; esptool reads them all
SYNC_VALUE_ROM = 0x20120707  # any non-zero value: esptool takes a zero SYNC value for a running stub
CHECKSUM_SEED = 0xEF
READ_SLOW_BLOCK = 64  # READ_FLASH_SLOW always returns 64 bytes


def banner(ctx, strap: int, mode: str) -> None:
    """The first lines the ESP32 ROM prints after any reset."""
    code, name = RESET_REASONS[ctx.reset_cause]
    ctx.write(f"{ROM_DATE}\r\n\r\n".encode())
    ctx.log(f"rst:0x{code:x} ({name}),boot:0x{strap:x} ({mode})")


def run(ctx) -> None:
    """Serve esptool on the console until a reset (which unwinds as PowerCut). Returns only when
    the host tells the ROM to run the app in flash (FLASH_END with "run"): the caller then boots
    from flash as a SPI boot would."""
    banner(ctx, STRAP_DOWNLOAD, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)")
    loader = Loader(ctx)
    if loader.regs.efuses.download_disabled():
        # UART_DOWNLOAD_DIS burnt: the ROM does not enter the loader; nothing answers esptool
        # until the chip is reset without BOOT held. (The ROM's exact wording here is not modelled.)
        while True:
            ctx.sleep(3600)
    ctx.log("waiting for download")
    loader.serve()


class Fail(Exception):
    """A command the loader refuses: (ROM error code, stub status code)."""

    def __init__(self, codes: tuple[int, int]):
        super().__init__(codes)
        self.rom_code, self.stub_code = codes


BAD_MESSAGE = (0x05, 0xC0)  # malformed packet or parameters
BAD_CHECKSUM = (0x07, 0xC1)
NOT_IN_FLASH_MODE = (0x06, 0xC6)
FLASH_ERROR = (0x08, 0xC4)
INFLATE_ERROR = (0x0B, 0xC7)
UNSUPPORTED = (0x05, 0xFF)  # an opcode this loader does not know


class RunApp(Exception):
    """The host asked the ROM to leave download mode and run the app in flash."""


class Loader:
    def __init__(self, ctx):
        self.ctx = ctx
        self.flash = ctx.flash
        self.regs = Registers(Efuses(ctx.state_dir, ctx.board_id), STRAP_DOWNLOAD)
        self.stub = False
        self._frames = slip.Decoder()
        self._queue: list[bytes] = []
        self._writer: FlashWriter | None = None
        self._write_failed = False  # the stub's last block did not program; the next command reports it
        self._inflate: zlib._Decompress | None = None  # decompressor while a compressed download is open
        self._seq = 0
        self._mem_seq = 0
        rom_only = {0x0E: self.read_flash_slow}
        stub_only = {0xD0: self.erase_flash, 0xD1: self.erase_region, 0xD2: self.read_flash}
        common = {
            0x02: self.flash_begin, 0x03: self.flash_data, 0x04: self.flash_end,
            0x05: self.mem_begin, 0x06: self.mem_end, 0x07: self.mem_data,
            0x08: self.sync, 0x09: self.write_reg, 0x0A: self.read_reg,
            0x0B: self.spi_set_params, 0x0D: self.spi_attach, 0x0F: self.change_baudrate,
            0x10: self.flash_defl_begin, 0x11: self.flash_defl_data, 0x12: self.flash_defl_end,
            0x13: self.spi_flash_md5,
        }
        self._rom = {**common, **rom_only}
        self._stub = {**common, **stub_only}

    # -- packet plumbing
    def serve(self) -> None:
        try:
            while True:
                self._handle(self._next_packet())
        except RunApp:
            return

    def _next_packet(self) -> bytes:
        """The next SLIP packet from the host, however long it takes (as the stub's SLIP_recv)."""
        while not self._queue:
            self._queue += self._frames.feed(self.ctx.read(0.5))
        return self._queue.pop(0)

    def _send(self, packet: bytes) -> None:
        self.ctx.write(slip.encode(packet))

    def _respond(self, op: int, value: int = 0, data: bytes = b"", fail: Fail | None = None) -> None:
        if self.stub:
            status = bytes([fail.stub_code, 0]) if fail else b"\x00\x00"
        else:
            status = bytes([1, fail.rom_code, 0, 0]) if fail else b"\x00\x00\x00\x00"
        body = data + status
        self._send(struct.pack("<BBHI", 1, op, len(body), value) + body)

    def _handle(self, packet: bytes) -> None:
        if len(packet) < 8 or packet[0] != 0:
            return  # not a command (a stray ack, line noise): the loader ignores it
        _, op, size, chk = struct.unpack_from("<BBHI", packet)
        data = packet[8:]
        handler = (self._stub if self.stub else self._rom).get(op)
        after = None
        try:
            if handler is None:
                raise Fail(UNSUPPORTED)
            if len(data) != size:
                raise Fail(BAD_MESSAGE)
            value, reply, after = handler(data, chk)
        except Fail as fail:
            self._respond(op, fail=fail)
            return
        except FlashError:
            self._respond(op, fail=Fail(FLASH_ERROR))
            return
        if op == 0x08:
            return  # sync answered itself
        self._respond(op, value, reply)
        if after:
            after()

    @staticmethod
    def _params(data: bytes, fmt: str) -> tuple:
        if len(data) != struct.calcsize(fmt):
            raise Fail(BAD_MESSAGE)
        return struct.unpack_from(fmt, data)

    @staticmethod
    def _payload(data: bytes, chk: int) -> tuple[int, bytes]:
        """The (seq, data) of a *_DATA command, after its length and checksum checks."""
        if len(data) < 16:
            raise Fail(BAD_MESSAGE)
        length, seq, _, _ = struct.unpack_from("<IIII", data)
        block = data[16:]
        if len(block) != length:
            raise Fail(BAD_MESSAGE)
        checksum = CHECKSUM_SEED
        for byte in block:
            checksum ^= byte
        if checksum != chk & 0xFF:
            raise Fail(BAD_CHECKSUM)
        return seq, block

    # -- link and registers
    def sync(self, data: bytes, chk: int):
        if data != SYNC_DATA:
            raise Fail(BAD_MESSAGE)
        value = 0 if self.stub else SYNC_VALUE_ROM
        for _ in range(SYNC_REPLIES):
            self._respond(0x08, value)
        return 0, b"", None

    def read_reg(self, data: bytes, chk: int):
        (addr,) = self._params(data, "<I")
        return self.regs.read(addr), b"", None

    def write_reg(self, data: bytes, chk: int):
        if not data or len(data) % 16:
            raise Fail(BAD_MESSAGE)
        for addr, value, mask, _delay_us in struct.iter_unpack("<IIII", data):
            self.regs.write(addr, value, mask)
        return 0, b"", None

    def spi_set_params(self, data: bytes, chk: int):
        _, total_size, _, sector, _, _ = self._params(data, "<IIIIII")
        if total_size > self.flash.geometry.size or sector != self.flash.geometry.sector_size:
            raise Fail(BAD_MESSAGE)
        return 0, b"", None

    def spi_attach(self, data: bytes, chk: int):
        # The ROM takes an extra "is legacy" word; the stub only the pin configuration.
        self._params(data, "<I" if self.stub else "<II")
        return 0, b"", None

    def change_baudrate(self, data: bytes, chk: int):
        # The console is a virtual UART: any rate works, and RFC2217 tells the server the new one.
        self._params(data, "<II")
        return 0, b"", None

    # -- RAM download (the stub upload)
    def mem_begin(self, data: bytes, chk: int):
        self._params(data, "<IIII")
        self._mem_seq = 0
        return 0, b"", None

    def mem_data(self, data: bytes, chk: int):
        seq, _ = self._payload(data, chk)
        if seq != self._mem_seq:
            raise Fail(BAD_MESSAGE)
        self._mem_seq += 1
        return 0, b"", None

    def mem_end(self, data: bytes, chk: int):
        no_entry, entry = self._params(data, "<II")
        if no_entry or not entry:
            return 0, b"", None
        return 0, b"", self._start_stub

    def _start_stub(self) -> None:
        self.stub = True
        self._send(b"OHAI")

    # -- flash download
    def _begin(self, data: bytes, compressed: bool):
        # The ESP32 ROM takes four words; the stub a fifth, the encrypted-write flag.
        size, _blocks, _block_size, offset, *encrypted = self._params(data, "<IIIII" if len(data) == 20 else "<IIII")
        if encrypted and encrypted[0]:
            raise Fail(BAD_MESSAGE)  # flash encryption is not modelled
        if offset + size > self.flash.geometry.size:
            raise Fail(BAD_MESSAGE)
        self._writer = FlashWriter(self.flash, offset, size, erase_ahead=not self.stub)
        self._write_failed = False
        self._inflate = zlib.decompressobj() if compressed else None
        self._seq = 0
        return 0, b"", None

    def _block(self, data: bytes, chk: int, compressed: bool):
        writer = self._writer
        if writer is None or (self._inflate is not None) != compressed:
            raise Fail(NOT_IN_FLASH_MODE)
        self._check_written()
        seq, block = self._payload(data, chk)
        if seq != self._seq:
            raise Fail(BAD_MESSAGE)
        if self._inflate is not None:
            try:
                block = self._inflate.decompress(block)
            except zlib.error:
                raise Fail(INFLATE_ERROR) from None
        if self.stub:
            self._seq += 1
            return 0, b"", lambda: self._program(writer, block)
        writer.write(block)
        self._seq += 1
        return 0, b"", None

    def _program(self, writer: FlashWriter, block: bytes) -> None:
        try:
            writer.write(block)
        except FlashError:
            self._write_failed = True

    def _check_written(self) -> None:
        if self._write_failed:
            self._write_failed = False
            raise Fail(FLASH_ERROR)

    def _end(self, data: bytes):
        (stay,) = self._params(data, "<I")
        if self._writer is not None:
            self._check_written()
            self._writer.finish()
        self._writer, self._inflate = None, None
        if not stay:
            return 0, b"", lambda: self.ctx.reset("software")
        if not self.stub:
            return 0, b"", self._run_app
        return 0, b"", None

    @staticmethod
    def _run_app() -> None:
        raise RunApp()

    def flash_begin(self, data: bytes, chk: int):
        return self._begin(data, compressed=False)

    def flash_data(self, data: bytes, chk: int):
        return self._block(data, chk, compressed=False)

    def flash_end(self, data: bytes, chk: int):
        return self._end(data)

    def flash_defl_begin(self, data: bytes, chk: int):
        return self._begin(data, compressed=True)

    def flash_defl_data(self, data: bytes, chk: int):
        return self._block(data, chk, compressed=True)

    def flash_defl_end(self, data: bytes, chk: int):
        return self._end(data)

    # -- flash reads, checks, erases
    def _read(self, offset: int, length: int) -> bytes:
        if offset + length > self.flash.geometry.size:
            raise Fail(BAD_MESSAGE)
        return self.flash.read(offset, length)

    def spi_flash_md5(self, data: bytes, chk: int):
        offset, length, _, _ = self._params(data, "<IIII")
        digest = hashlib.md5(self._read(offset, length))
        # The ROM answers in ASCII hex, the stub in raw bytes.
        return 0, digest.digest() if self.stub else digest.hexdigest().encode(), None

    def read_flash_slow(self, data: bytes, chk: int):
        offset, length = self._params(data, "<II")
        if length > READ_SLOW_BLOCK:
            raise Fail(BAD_MESSAGE)
        return 0, self._read(offset, length).ljust(READ_SLOW_BLOCK, b"\xff"), None

    def read_flash(self, data: bytes, chk: int):
        offset, length, packet, in_flight = self._params(data, "<IIII")
        if not packet or not in_flight:
            raise Fail(BAD_MESSAGE)
        content = self._read(offset, length)
        return 0, b"", lambda: self._stream(content, packet, in_flight)

    def _stream(self, content: bytes, packet: int, in_flight: int) -> None:
        """The stub's READ_FLASH transfer: data packets, each acked by the host with the byte count
        it has so far, then the MD5 of all of it.

        `in_flight` counts bytes, not packets: the stub sends while `num_sent - num_acked <
        max_in_flight` (esptool's flasher stub, handle_flash_read). esptool asks for 64, less than
        one 4 KiB packet, so the stub sends one packet and waits for its ack: stop-and-wait (counted
        as packets, the model ran 256 KiB ahead of esptool and its RFC2217 client)."""
        sent = acked = 0
        while acked < len(content) and acked <= sent:
            while sent < len(content) and sent - acked < in_flight:
                self._send(content[sent : sent + packet])
                sent = min(sent + packet, len(content))
            # The stub waits for the ack as long as it takes (SLIP_recv has no timeout; a host that
            # stalls loses nothing). A packet that is not a 4-byte ack - the next esptool's SYNC
            # after one that died - ends the transfer, and the stub is back at its commands.
            ack = self._next_packet()
            if len(ack) != 4:
                break
            acked = struct.unpack("<I", ack)[0]
        self._send(hashlib.md5(content).digest())

    def erase_flash(self, data: bytes, chk: int):
        self.flash.erase(0, self.flash.geometry.size)  # the NOR's chip erase: one command
        return 0, b"", None

    def erase_region(self, data: bytes, chk: int):
        offset, size = self._params(data, "<II")
        g = self.flash.geometry
        if offset % g.sector_size or size % g.sector_size or offset + size > g.size:
            raise Fail(FLASH_ERROR)
        for start, length in erase_commands(g.sector_size, offset, offset + size):
            self.flash.erase(start, length)
        return 0, b"", None
