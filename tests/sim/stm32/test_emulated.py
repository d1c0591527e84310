"""A virtual STM32 as the lab runs it, its firmware on the emulated core: MCUboot's model
hands over to rig's reference firmware itself, which serves MCUmgr SMP on the console.

As a bench engineer would: pyocd loads the virtual MCUboot and a signed build of rig's firmware
(rig.build.cache), the console shows MCUboot's log and the firmware's lines, smpclient over the
console's pty uploads a new signed build, marks it for test and resets the board; MCUboot's
model swaps it in, the new firmware runs from slot0 and confirms itself, and a power cycle keeps
it - judged by the console and by what the firmware answers over SMP.
"""

import re
import shutil
import subprocess
import threading

import pytest
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, ResetWrite

from rig.build import cache
from rig.image import mcuboot
from tests.sim.stm32.conftest import PYOCD, VARIANTS, variants
from tests.smp_session import smp_session

BOOTED = r"rig: boot variant=\S+ version=(\S+) slot=0 reset=(\S+) boots=(\d+) fault=(\S+)\r\n"


def smp(vb, work, timeout=20.0):
    return smp_session(vb.pty.path, work, timeout)


@pytest.mark.parametrize("variant", VARIANTS)
def test_firmware_boots_and_updates_itself_over_smp(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    old, new = (mcuboot.sign(cache.binary(variant, "none", mcuboot.Version.parse(v)), vb.signer, v)
                for v in ("1.0.0", "2.0.0"))
    vb.install(old)
    vb.board.set_power(True)
    vb.console.expect(r"I: Jumping to the first image slot")
    assert vb.console.expect(BOOTED).groups() == ("1.0.0+0", "power-on", "1", "none")
    vb.console.expect(r"rig: health ok")
    vb.console.expect(r"rig: alive uptime=1")

    async def update(client):
        echo = await client.request(EchoWrite(d="bench"))
        async for _ in client.upload(new, first_timeout_s=30):
            pass
        digest = mcuboot.parse(new).find(mcuboot.TLV_SHA256)[0].value
        marked = await client.request(ImageStatesWrite(hash=digest, confirm=False))
        await client.request(ResetWrite())
        return echo, marked

    echo, marked = smp(vb, update, timeout=60)
    assert success(echo) and echo.r == "bench"
    assert success(marked) and [(s.version, s.pending) for s in marked.images][1] == ("2.0.0", True)
    vb.console.expect(r"I: Swap type: test", timeout=20)
    assert vb.console.expect(BOOTED, timeout=20).groups()[:2] == ("2.0.0+0", "software")
    vb.console.expect(r"rig: confirmed")

    vb.board.set_power(False)  # confirmed: a power cycle keeps the new firmware
    vb.board.set_power(True)
    vb.console.expect(r"I: Swap type: none")
    assert vb.console.expect(BOOTED).groups()[:3] == ("2.0.0+0", "power-on", "1")
    vb.console.expect(r"rig: alive uptime=1")

    state = smp(vb, lambda client: client.request(ImageStatesRead()))
    running = state.images[0]
    assert (running.version, running.active, running.confirmed) == ("2.0.0", True, True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyocd_flashes_a_board_whose_slot0_boots_nothing(virtual_stm32, variant):
    """After firmware ran, an image MCUboot refuses leaves no firmware running: pyocd halts the
    core in the bootloader (as on silicon) and programs good firmware again."""
    vb = virtual_stm32(variant)
    good = vb.image("1.0.0", fault="none")
    vb.install(good)
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    damaged = bytearray(good)
    damaged[0x300] ^= 0x01  # a byte of code: the image's hash no longer matches
    vb.install(bytes(damaged))
    vb.board.set_power(True)
    vb.console.expect(r"I: Starting bootloader")
    with pytest.raises(AssertionError):
        vb.console.expect(BOOTED, timeout=3)
    vb.install(good)
    vb.board.set_power(True)
    assert vb.console.expect(BOOTED).groups()[:2] == ("1.0.0+0", "power-on")


def halt_and_step(vb) -> str:
    vb.install(mcuboot.sign(cache.binary(vb.variant, "none", mcuboot.Version.parse("1.0.0")), vb.signer, "1.0.0"))
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    return vb.cmd("halt", "reg pc", "step", "reg pc", "step", "reg pc").stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyocd_halts_and_steps_the_core_in_slot0(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    out = halt_and_step(vb)
    pcs = [int(m, 16) for m in re.findall(r"pc = 0x([0-9a-f]+)", out)]
    slot0 = (vb.addr("slot0"), vb.addr("slot0") + vb.layout.part("slot0").size)
    assert len(pcs) == 3, out
    assert all(slot0[0] <= pc < slot0[1] for pc in pcs), out
    assert len(set(pcs)) > 1, out  # the core moved


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_core_runs_on_once_pyocd_lets_go(virtual_stm32, variant):
    """pyocd's commander leaves the core it halted halted when it exits (resume_on_disconnect
    defaults to false there, as on a bench); a later `go` lets it run on from where it stopped."""
    vb = virtual_stm32(variant)
    halt_and_step(vb)
    assert re.search(r"Core 0 .*:\s+Halted", vb.cmd("status", attach=True).stdout)
    vb.console.drain()  # the core is halted: whatever came before is old
    vb.cmd("go", attach=True)
    vb.console.expect(r"rig: alive uptime=\d+", timeout=10)


@pytest.mark.parametrize("variant", variants("stm32l0"))  # the part CI failed on; the H7 nightly
def test_a_core_left_halted_after_flashing_stays_halted_for_the_next_session(virtual_stm32, variant):
    """A core pyocd flashed and left halted (`pyocd erase` without resume) is halted for the next
    session too: pyocd's connect writes DHCSR back with C_DEBUGEN added to what it reads, which
    would resume a core that read without C_HALT (the next flash init then timed out)."""
    vb = virtual_stm32(variant)
    vb.install(vb.image("1.0.0", fault="none"))
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    sector = vb.geometry.sector_size
    last = vb.addr("slot1") + vb.layout.part("slot1").size - sector
    vb.pyocd("erase", "-u", vb.uid, "-t", vb.target, "-O", "resume_on_disconnect=false",
             "--sector", f"0x{last:x}+0x{sector:x}")
    for _ in range(2):
        assert re.search(r"Core 0 .*:\s+Halted", vb.cmd("status", attach=True).stdout)


def test_a_connect_under_reset_halts_the_core_before_the_firmware_runs(virtual_stm32):
    """pyocd's STM32H743 target connects under reset (the L0's has no such sequence): nRST low,
    DEMCR.VC_CORERESET and C_DEBUGEN set, nRST released, DEMCR restored 10 ms later. Silicon
    decides the vector catch as the core leaves reset, so the firmware never runs before pyocd's
    halt. The virtual H7 decided it once MCUboot's model handed over - with the UART's datasheet
    time MCUboot's log takes ~30 ms, DEMCR was restored by then, and the firmware ran and printed
    its boot line (timing-dependent without the datasheet times: on a loaded host as well)."""
    vb = virtual_stm32("stm32h7", timing="datasheet")
    vb.install(vb.image("1.0.0", fault="none"))
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    vb.pyocd("cmd", "-u", vb.uid, "-t", vb.target, "-M", "halt", "-c", "status")
    assert re.search(r"Core 0 .*:\s+Halted", vb.cmd("status", attach=True).stdout)
    after = vb.console.drain()
    assert "I: Starting bootloader" in after and "rig: boot" not in after, after
    vb.cmd("go", attach=True)
    vb.console.expect(BOOTED, timeout=10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyocd_breakpoint_halts_the_core_there(virtual_stm32, variant):
    """An FPB breakpoint on the SysTick handler (its address from the build's ELF, as a bench
    engineer looks it up): the running core halts there, and again after a resume."""
    vb = virtual_stm32(variant)
    vb.install(mcuboot.sign(cache.binary(variant, "none", mcuboot.Version.parse("1.0.0")), vb.signer, "1.0.0"))
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    handler = symbol(cache.app(variant, "1.0.0").elf, "SysTick_Handler")
    out = vb.cmd("halt", f"break 0x{handler:x}", "go", "sleep 300", "reg pc", "go", "sleep 300", "reg pc",
                 f"rmbreak 0x{handler:x}").stdout
    assert re.findall(r"pc = 0x([0-9a-f]+)", out) == [f"{handler:08x}"] * 2, out


def symbol(elf, name):
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(f" {name}"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gdb_breaks_at_main_steps_prints_and_continues(virtual_stm32, variant, tmp_path):
    """Debian's gdb-multiarch through `pyocd gdbserver`, with the build's ELF, as on a bench.

    The server is not killed: pyocd acknowledges gdb's detach before it resumes the core (the
    client thread answers 'D', then leaves its loop and resumes), so gdb may have exited while the
    core is still halted. Without --persist the server ends by itself once gdb has gone - after
    that resume, and through its own disconnect (resume_on_disconnect, C_DEBUGEN cleared). A
    SIGTERM as soon as gdb had exited landed before that resume now and then at load 8-10 (2 of 20
    runs beside two busy loops): the core stayed halted at main, as a halted core on silicon does
    when its debugger dies."""
    if shutil.which("gdb-multiarch") is None:
        pytest.skip("gdb-multiarch is not installed (.ci/setup installs it)")
    vb = virtual_stm32(variant)
    built = cache.app(variant, "1.0.0")
    vb.install(mcuboot.sign(built.bin.read_bytes(), vb.signer, "1.0.0"))
    vb.board.set_power(True)
    vb.console.expect(r"rig: alive uptime=1")
    server = subprocess.Popen([PYOCD, "gdbserver", "-u", vb.uid, "-t", vb.target, "-p", "0",
                               "-O", "telnet_port=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = _gdb_port(server)
        gdb = subprocess.run(
            ["gdb-multiarch", "-batch", "-nx", str(built.elf), "-ex", f"target remote 127.0.0.1:{port}",
             "-ex", "monitor reset halt", "-ex", "break main", "-ex", "continue", "-ex", "next", "-ex", "next",
             "-ex", "print rig_ticks_ms", "-ex", "info registers pc", "-ex", "detach"],
            capture_output=True, text=True, timeout=120)
        logged = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:  # gdb failed: the server still waits for a client
            server.kill()
            server.communicate()
    assert server.returncode == 0, logged
    assert "Breakpoint 1, main () at firmware/common/main.c" in gdb.stdout, gdb.stdout + gdb.stderr
    assert re.search(r"^\$1 = \d+$", gdb.stdout, re.M), gdb.stdout
    pc = int(re.search(r"^pc\s+0x([0-9a-f]+)\s+0x[0-9a-f]+ <main\+\d+>", gdb.stdout, re.M)[1], 16)
    assert vb.addr("slot0") <= pc < vb.addr("slot0") + vb.layout.part("slot0").size
    assert "detached" in gdb.stdout
    vb.console.expect(r"rig: alive uptime=1", timeout=10)  # it continued after the reset gdb asked for


def _gdb_port(server, timeout=30.0) -> int:
    """The port pyocd gdbserver bound (told -p 0), from the line it logs once it listens."""
    seen = []
    guard = threading.Timer(timeout, server.kill)  # a server that never listens ends the loop below
    guard.start()
    try:
        for line in server.stdout:
            seen.append(line)
            if found := re.search(r"GDB server listening on port (\d+)", line):
                return int(found[1])
    finally:
        guard.cancel()
    raise AssertionError("pyocd gdbserver ended without listening:\n" + "".join(seen))
