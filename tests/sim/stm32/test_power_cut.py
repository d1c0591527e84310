"""Power cuts during MCUboot swaps, after MCUboot's simulator: an upgrade and a revert are cut
before flash operation N (and torn at N), the board is powered again, and then it must boot the
right signed image with the trailers in the states MCUboot's design gives.

Verdicts come from the console (which version the app reports) and from flash read back through
pyocd (trailers and both slots' images, checked with rig.image). The lab instruments used for the
setup are the power switch, the cut relay armed at a flash operation (what the rack's control
endpoint does) and restoring the flash to the state before the swap, as a production programmer
would - the instruments never decide a verdict.
"""

import pytest
from pyocd.core.helpers import ConnectHelper

from rig.image import mcuboot
from rig.image.trailer import Flag, Magic, SwapType, Trailer
from tests.sim.stm32.conftest import VARIANTS

CUT_OFF_TIME = 0.01  # seconds the cut relay keeps the board dark


class Sweep:
    def __init__(self, vb):
        self.vb = vb
        self.flash_file = vb.root / "state" / "flash.bin"
        self.trailers = {s: Trailer.for_layout(vb.layout, s) for s in ("slot0", "slot1")}
        vb.install(vb.image("1.0.0"), vb.image("2.0.0"), pending="test")
        self.before_upgrade = self.flash_file.read_bytes()
        self.upgrade_ops = self._run_uncut("2.0.0+0")
        self.before_revert = self.flash_file.read_bytes()
        self.revert_ops = self._run_uncut("1.0.0+0")
        vb.board.set_power(True)  # the debug port answers only a powered target
        self.session = ConnectHelper.session_with_chosen_probe(
            unique_id=vb.uid, target_override=vb.target, connect_mode="attach")
        self.session.open()
        vb.board.set_power(False)

    def close(self):
        self.session.close()

    def _run_uncut(self, version: str) -> int:
        """Boot once without a cut; the flash operations it took (the sweep's range)."""
        start = self.vb.board.flash.ops
        self.vb.board.set_power(True)
        assert self.vb.console.expect(r"rig: boot variant=\S+ version=(\S+) ")[1] == version
        self.vb.board.set_power(False)
        return self.vb.board.flash.ops - start

    def cut(self, before: bytes, op: int, tear: bool) -> str:
        """Restore `before`, cut power at operation `op` of the boot, power on; the version that runs."""
        vb = self.vb
        # The board is off; its flash file is the part's cells, mapped by the board: written in place,
        # as a programmer writes cells (a truncating write_bytes let a board thread that still read the
        # map meanwhile die of SIGBUS - an xdist worker crashed so once).
        with self.flash_file.open("r+b") as cells:
            cells.write(before)
        vb.console.drain()
        vb.board.arm_cut(op, tear=tear, off_time=CUT_OFF_TIME)
        vb.board.set_power(True)
        version = vb.console.expect(r"rig: boot variant=\S+ version=(\S+) ", timeout=10)[1]
        return version

    def after(self):
        self.vb.board.flash.disarm()
        self.vb.board.set_power(False)

    # -- read back through the probe
    def read(self, slot: str, off: int, n: int) -> bytes:
        return bytes(self.session.target.read_memory_block8(self.vb.addr(slot, off), n))

    def trailer(self, slot: str):
        t = self.trailers[slot]
        return t.read(self.read(slot, t.status_off, t.size))

    def image_version(self, slot: str) -> str:
        """The version of the slot's image, which must verify; only its bytes are read."""
        fields = mcuboot.HEADER.unpack(self.read(slot, 0, mcuboot.HEADER_SIZE))
        hdr_size, prot_size, img_size = fields[2], fields[3], fields[4]
        tlvs = hdr_size + img_size + prot_size
        _, total = mcuboot.TLV_INFO.unpack(self.read(slot, tlvs, mcuboot.TLV_INFO.size))
        img = mcuboot.verify(self.read(slot, 0, tlvs + total), [self.vb.signer.public])
        return str(img.version)


@pytest.fixture(params=VARIANTS)
def sweep(request, virtual_stm32):
    s = Sweep(virtual_stm32(request.param))
    yield s
    s.close()


def expect_upgraded(s: Sweep, version: str, where: str) -> None:
    """The test image runs from the primary slot, unconfirmed; the old one waits in the secondary."""
    assert version == "2.0.0+0", where
    pri, sec = s.trailer("slot0"), s.trailer("slot1")
    assert (pri.magic, pri.swap_type, pri.copy_done, pri.image_ok) == (
        Magic.GOOD, SwapType.TEST, Flag.SET, Flag.UNSET), where
    assert sec.magic is Magic.UNSET, where
    assert (s.image_version("slot0"), s.image_version("slot1")) == ("2.0.0+0", "1.0.0+0"), where


def expect_reverted(s: Sweep, version: str, where: str) -> None:
    """The old image is back in the primary slot for good; the test image sits in the secondary."""
    assert version == "1.0.0+0", where
    pri, sec = s.trailer("slot0"), s.trailer("slot1")
    assert (pri.magic, pri.copy_done, pri.image_ok) == (Magic.GOOD, Flag.SET, Flag.SET), where
    assert sec.magic is Magic.UNSET, where
    assert (s.image_version("slot0"), s.image_version("slot1")) == ("1.0.0+0", "2.0.0+0"), where


def expect_revert_abandoned(s: Sweep, version: str, where: str) -> None:
    """A revert whose first trailer write (fixup_revert's secondary magic) was torn: the magic reads
    bad, so MCUboot's swap table sees no swap and keeps the running image - what MCUboot does."""
    assert version == "2.0.0+0", where
    pri, sec = s.trailer("slot0"), s.trailer("slot1")
    assert (pri.magic, pri.copy_done, pri.image_ok, sec.magic) == (Magic.GOOD, Flag.SET, Flag.UNSET, Magic.BAD), where
    assert (s.image_version("slot0"), s.image_version("slot1")) == ("2.0.0+0", "1.0.0+0"), where


def expect_one_of(s: Sweep, version: str, where: str, *expectations) -> None:
    failures = []
    for expect in expectations:
        try:
            return expect(s, version, where)
        except AssertionError as err:
            failures.append(f"{expect.__name__}: {err}")
    raise AssertionError("\n".join(failures))


def expect_boots_again(s: Sweep, where: str) -> None:
    """After a torn write, the next power cycle boots a signed image again (it may revert a test one)."""
    s.vb.board.set_power(False)
    s.vb.board.set_power(True)
    version = s.vb.console.expect(r"rig: boot variant=\S+ version=(\S+) ", timeout=10)[1]
    assert version in ("1.0.0+0", "2.0.0+0") and s.image_version("slot0") == version, where


def check_upgrade(s: Sweep, op: int, tear: bool) -> None:
    where = f"upgrade cut at operation {op} (torn={tear})"
    try:
        version = s.cut(s.before_upgrade, op, tear)
        if not tear:
            expect_upgraded(s, version, where)
            return
        # Torn, the last operation - copy_done - still sets its flag byte: the swap is complete and
        # the test image, reset before it could confirm itself, is reverted.
        expect_one_of(s, version, where, expect_upgraded, expect_reverted)
        expect_boots_again(s, where)
    finally:
        s.after()


def check_revert(s: Sweep, op: int, tear: bool) -> None:
    where = f"revert cut at operation {op} (torn={tear})"
    try:
        version = s.cut(s.before_revert, op, tear)
        if not tear:
            expect_reverted(s, version, where)
            return
        expect_one_of(s, version, where, expect_reverted, expect_revert_abandoned)
        expect_boots_again(s, where)
    finally:
        s.after()


def sample(total: int) -> list[int]:
    """A spread of cut points: the first and last operations and three in between."""
    return sorted({0, total // 4, total // 2, 3 * total // 4, total - 1})


def test_upgrade_and_revert_survive_a_sample_of_cuts(sweep):
    for op in sample(sweep.upgrade_ops):
        check_upgrade(sweep, op, tear=False)
    check_upgrade(sweep, sweep.upgrade_ops // 3, tear=True)
    for op in sample(sweep.revert_ops):
        check_revert(sweep, op, tear=False)
    check_revert(sweep, sweep.revert_ops // 3, tear=True)


@pytest.mark.nightly
def test_upgrade_survives_a_cut_at_every_operation(sweep):
    for op in range(sweep.upgrade_ops):
        check_upgrade(sweep, op, tear=False)
        check_upgrade(sweep, op, tear=True)


@pytest.mark.nightly
def test_revert_survives_a_cut_at_every_operation(sweep):
    for op in range(sweep.revert_ops):
        check_revert(sweep, op, tear=False)
        check_revert(sweep, op, tear=True)
