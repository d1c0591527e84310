"""How an update reaches each kind of board, and how the board is read back afterwards.

Two kinds, one interface - UpdateTarget, what rig.ota.campaign (and anything else that delivers
to rack boards) asks instead of looking at the variant; `for_board` picks the kind from the
board's delivery (rig.variants):

    McubootTarget  STM32H7/STM32L0: baseline through the SWD probe (MCUboot + a signed image in
                   slot0), updates pushed with MCUmgr SMP on the console (rig.ota.smp_push), then
                   `test` (the campaign power-cycles the board so MCUboot swaps the image in, with
                   the console listening); read-back of slot0's image and both trailers by the probe.
    Esp32Target    ESP32: baseline through the ROM loader (bootloader, partition table, blank
                   otadata, app in ota_0; one esptool session that also reads the anti-rollback
                   eFuse), updates pulled by the board from rig.ota.server after `ota <url>` on its
                   console - over HTTPS from the server presenting the certificate the plan names,
                   checked against the CA the campaign's firmware embeds, or plain HTTP;
                   read-back of otadata and the booted slot's MD5 through esptool.

    baseline(version, signer) -> Installed          install a known, confirmed release
    start(artefact, plan) -> None                    hand the board an update (may raise RigError)
    resume(artefact, plan) -> None                   hand it again after a power cut
    finish(plan) -> None                             the delivery is over: its counts are in plan
    read_back(candidates) -> ReadBack                what flash says now
    pushes, installs_at_reset                        how the delivery behaves (UpdateTarget)
    defect                                           the defect build its releases are (UpdateTarget)

`candidates` maps a name ("old", "new") to the image bytes it may hold; the read-back names the
one found in the slot the bootloader boots.
"""

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rig import delta
from rig.delta import container
from rig.errors import BoardRefused, HandoverRefused, PowerCutDuringUpload, RigError
from rig.image import esp_partitions, factory, mcuboot, otadata
from rig.image.layouts import LAYOUTS
from rig.image.trailer import Flag, Magic, SwapType, Trailer, TrailerState, swap_type
from rig.ota import links as link_profiles
from rig.ota import releases, smp_push
from rig.ota.faults import Fault
from rig.ota.server import DeviceStats, OtaServer
from rig.variants import Delivery

if TYPE_CHECKING:
    from rig.drivers import BoardDrivers
    from rig.image.keys import Signer
    from rig.image.layouts import Layout
    from rig.lab import Board

# ESP32 TRM, eFuse controller: EFUSE_BLK3_RDATA4_REG, the word ESP-IDF keeps SECURE_VERSION in
# (esp_efuse_table.csv: BLK3 bits 128..159). The anti-rollback floor is its popcount.
EFUSE_BLK3_RDATA4 = 0x3FF5A088
# The STM32 baselines this process signed, by (variant, version, key hash, floor, defect): ECDSA
# signatures differ every time, so signing again would make every baseline new bytes to program.
_BASELINES: dict[tuple, bytes] = {}
BASELINE_TIMEOUT_S = 60.0  # a flash-encrypted ESP32's baseline over the air: per boot or download
# Per SMP reply (the first upload chunk, which may erase, gets 20 s). A reply to an upload chunk
# costs the part the chunk's bytes at the line rate plus its flash writes: well under a second on
# silicon, up to a few seconds on an emulated core on a loaded host (it executes the part's
# instructions per character before it takes the next). A board that restarted mid-upload ends
# the session at its boot line (rig.drivers.smp), so this wait is never the way a cut is noticed.
SMP_TIMEOUT_S = 10.0
TLV_ROOM = 1024  # enough for the unprotected TLVs of an ECDSA-P256 or RSA-2048 image


@dataclass(frozen=True)
class Installed:
    image: bytes
    version: str
    floor: int  # the board's rollback floor: MCUboot security counter / ESP32 secure_version


@dataclass(frozen=True)
class ReadBack:
    holds: str | None  # which candidate the boot slot holds (None: none of them)
    stable: bool  # the next reset boots the same image (nothing pending, nothing on trial)
    detail: str  # the trailer / otadata state, for the report


class Plan:
    """What a target needs for one delivery besides the artefact, and what it counted."""

    def __init__(self, faults: list[Fault] | None = None, on_progress: Callable[[int, int], None] | None = None,
                 name: str = "update.bin", link: str = "loopback", tls: str | None = None):
        self.faults = faults or []
        self.on_progress = on_progress  # (done, total) bytes: served (HTTP) or acknowledged (SMP)
        self.name = name
        self.link = link  # rig.ota.links profile of the download (a board that pulls its update)
        # the certificate the OTA server presents (rig.ota.tls.SERVER_CERTS), "none" for plain
        # HTTP, None for the campaign's default (a board that pulls its update)
        self.tls = tls
        self.total = 0  # bytes of the artefact
        self.wire_bytes = 0  # final once the target's finish() returned
        self.faults_fired: list[str] = []  # the delivery's link faults, in order; final after finish()
        self.push = smp_push.PushResult()  # SMP sessions and counts over the delivery


class UpdateTarget(Protocol):
    """One board as an OTA target: installs a baseline, takes an update, is read back."""

    # The host sends the update itself (SMP): progress arrives on the caller's thread, and a power
    # cut mid-upload ends the upload with the board (the caller restarts the board and starts
    # again). Otherwise the board pulls it (HTTP): progress arrives on the server's thread, and a
    # board that lost power before the new image confirmed must be handed the update again.
    pushes: bool
    # The bootloader installs the update at the next reset, which the caller makes after start()
    # (MCUboot swaps the tested image in); a power cut at flash operation N counts from that reset.
    # Otherwise the board writes the update while it receives it, then restarts by itself, and
    # flash operations count from the hand-over.
    installs_at_reset: bool
    layout: "Layout"
    staging: str  # the partition an update is written to
    running: str  # the partition the updated image runs from
    # The defect build of rig's C app (rig.build.defects) the board's releases are made from, for
    # a lab that proves a broken firmware is caught (rig.sim.broken); None: the good firmware, and
    # always on a board whose firmware is modelled (the ESP32's defects are switches of its model).
    defect: str | None

    def baseline(self, version: str, signer: "Signer") -> "Installed": ...

    def start(self, artefact: bytes, plan: Plan) -> None:
        """Hand the board the update: HandoverRefused when it cannot be (refused, no answer),
        PowerCutDuringUpload when the caller's progress callback cut the power mid-upload."""

    def resume(self, artefact: bytes, plan: Plan) -> None:
        """Hand it again after a power cut (the board resumes what it kept)."""

    def finish(self, plan: Plan) -> None: ...

    def read_back(self, candidates: dict[str, bytes]) -> "ReadBack": ...


def for_board(drivers: "BoardDrivers", artefacts: Path, servers: "Callable[[str], OtaServer]",
              bootloader: "Callable[[Board], bytes]", firmware_ca: bytes = b"",
              defect: str | None = None) -> UpdateTarget:
    """The target for `drivers.board`, by how its variant takes updates (rig.variants.Delivery);
    `bootloader(board)` gives the MCUboot binary an SMP board's baseline installs; `servers(tls)`
    the OTA server presenting that certificate ("none": plain HTTP) to a board that pulls, whose
    firmware trusts `firmware_ca` (empty: it fetches over plain HTTP by default); `defect` is the
    defect build (rig.build.defects) an SMP board's releases are - the boards that run rig's C app."""
    if drivers.board.facts.delivery is Delivery.HTTP_PULL:
        return Esp32Target(drivers, servers, artefacts, firmware_ca)
    return McubootTarget(drivers, bootloader(drivers.board), artefacts, defect)


class McubootTarget:
    """MCUboot boards (STM32H7, STM32L0): SMP push, swap at the next reset, read-back by the probe."""

    pushes = True
    installs_at_reset = True
    staging = "slot1"
    running = "slot0"  # the swap moves the new image there

    def __init__(self, drivers: "BoardDrivers", bootloader: bytes, artefacts: Path, defect: str | None = None):
        self.d = drivers
        self.defect = defect
        self.layout = LAYOUTS[drivers.board.flash_layout]
        self.bootloader = bootloader
        self.artefacts = artefacts
        self.intended_hash: bytes | None = None
        if drivers.smp is None:
            raise RigError(f"board {drivers.board.id}: no SMP driver bound; it does not take SMP pushes")
        self.smp = drivers.smp
        self.smp.timeout = SMP_TIMEOUT_S

    def _slot(self, name: str):
        return self.layout.part(name)

    def floor(self) -> int:
        """The security counter of the image in slot0: MCUboot's stored floor never exceeds it."""
        slot = self._slot("slot0")
        head = self.d.read_flash(slot.offset, mcuboot.HEADER_SIZE)
        magic, _, hdr_size, protected, img_size = struct.unpack_from("<IIHHI", head)
        if magic != mcuboot.IMAGE_MAGIC:
            return 0  # a blank board: nothing was ever confirmed
        try:
            img = mcuboot.parse(self.d.read_flash(slot.offset, min(slot.size, hdr_size + img_size + protected
                                                                   + TLV_ROOM)))
        except RigError:
            return 0
        return img.security_counter or 0

    def baseline(self, version: str, signer: "Signer") -> Installed:
        floor = self.floor()
        key = (self.d.board.variant, version, signer.public.keyhash, floor, self.defect)
        if key not in _BASELINES:
            _BASELINES[key] = releases.stm32_image(self.d.board.variant, version, signer, security_counter=floor,
                                                   defect=self.defect)
        image = _BASELINES[key]
        flasher = self.d.powered_flasher()
        self.d.ensure([(self.layout.part("mcuboot").offset, self.bootloader)])
        # Erase what decides the next boot, not whole slots (an L0 slot is 600 pages): both
        # trailers, and slot1's first sector so no stale image header is listed over SMP. Writing
        # slot0 erases the sectors the image covers.
        sector = self.layout.geometry.sector_size
        for name in ("slot0", "slot1"):
            part = self._slot(name)
            start = Trailer.for_layout(self.layout, name).erase_start(sector)
            flasher.erase(part.offset + start, part.size - start)
        flasher.erase(self._slot("slot1").offset, sector)
        self.d.forget_state()  # the erases halted the core
        # Written only in the sectors where slot0 differs: a campaign that kept or rolled back to the
        # last baseline left these very bytes (one signature per process, see _BASELINES), one that
        # updated left a release that differs from it in a few (its version, hash and signature), and
        # programming the whole image through the probe took most of an STM32 scenario's time (the
        # L0's 128-byte pages).
        self.d.ensure([(self._slot("slot0").offset, image)], by_sector=True)
        return Installed(image, version, floor)

    def start(self, artefact: bytes, plan: Plan) -> None:
        try:
            self._push(artefact, plan)
        except PowerCutDuringUpload:
            raise
        except BoardRefused as exc:  # its SMP error reply says it all (the request: in the cause)
            raise HandoverRefused(exc.reason) from exc
        except RigError as exc:  # no reply, or an image the host cannot send
            raise HandoverRefused(str(exc)) from exc

    def _push(self, artefact: bytes, plan: Plan) -> None:
        self.intended_hash = self._intended_hash(artefact)
        self.d.target.activate(self.smp)
        result = plan.push  # one count over every push of this delivery
        try:
            smp_push.push(self.smp, artefact, plan.faults, plan.on_progress, self.artefacts, result)
        finally:
            plan.wire_bytes = result.wire_bytes
            plan.faults_fired = list(result.faults_fired)
        self.smp.test(self.intended_hash.hex())

    def resume(self, artefact: bytes, plan: Plan) -> None:
        self.start(artefact, plan)  # after a power cut the board's upload state is gone: push again

    def _intended_hash(self, artefact: bytes) -> bytes:
        """The SHA256 TLV of the image the update should leave in slot1: the artefact's own, or for
        a rig delta container (applied by the board as it arrives) the image it rebuilds from the
        image slot0 holds, read back over the probe as a bench would."""
        try:
            if artefact[: len(container.MAGIC)] == container.MAGIC:
                h = container.parse(artefact)
                old = b"" if h.kind == container.KIND_FULL else self.d.read_flash(self._slot("slot0").offset,
                                                                                   h.old_size)
                return mcuboot.parse(delta.apply(old, artefact)).find(mcuboot.TLV_SHA256)[0].value
            return mcuboot.parse(artefact).find(mcuboot.TLV_SHA256)[0].value
        except (RigError, IndexError):
            return hashlib.sha256(artefact).digest()  # not an image, or not for this board: it will say so

    def finish(self, plan: Plan) -> None:
        pass  # the pushes counted as they went (plan.wire_bytes, plan.faults_fired)

    def read_back(self, candidates: dict[str, bytes]) -> ReadBack:
        slot0, slot1 = self._slot("slot0"), self._slot("slot1")
        found = None
        for name, image in candidates.items():
            if self.d.read_flash(slot0.offset, len(image)) == image:
                found = name
                break
        states = []
        for part in (slot0, slot1):
            t = Trailer.for_layout(self.layout, part.name)
            states.append(t.read(self.d.read_flash(part.offset + part.size - t.size, t.size)))
        pending = swap_type(*states)
        ok = "set" if states[0].image_ok is Flag.SET else "unset"
        done = "set" if states[0].copy_done is Flag.SET else "unset"
        odd = _unsettled_trailers(states[0], states[1])
        detail = (f"slot0 magic={states[0].magic.name.lower()} image_ok={ok} copy_done={done}; "
                  f"slot1 magic={states[1].magic.name.lower()}; next boot: {pending.name.lower()}"
                  + (f"; not a settled state: {odd}" if odd else ""))
        return ReadBack(found, pending is SwapType.NONE and not odd, detail)


def _unsettled_trailers(primary: TrailerState, secondary: TrailerState) -> str:
    """Why the two trailers are not a state MCUboot leaves once nothing is pending, or "".

    MCUboot's design (docs/design.md, "Image Trailer" and the swap states): every swap ends with
    copy_done set in the primary trailer, and image_ok set there by the app's confirm or by the
    bootloader after a permanent swap or a revert; the secondary's trailer is erased by the swap (or
    the whole slot, when its image is refused). A primary trailer that was never written (no swap
    since the slot was flashed) is settled as it is."""
    if secondary.magic is Magic.GOOD:
        return "the secondary still requests a swap"
    if primary.magic is Magic.UNSET:
        return ""
    if primary.magic is not Magic.GOOD:
        return "the primary trailer's magic is damaged"
    if primary.copy_done is not Flag.SET:
        return "a swap was begun and never finished (copy_done unset)"
    if primary.image_ok is not Flag.SET:
        return "the image swapped in was never confirmed (image_ok unset)"
    return ""


class Esp32Target:
    """ESP32 boards: HTTP pull from rig.ota.server, read-back through the ROM loader."""

    pushes = False
    installs_at_reset = False
    staging = "ota_1"  # the baseline runs from ota_0; the client writes the other slot
    running = "ota_1"  # ... and the bootloader boots it from there
    defect: str | None = None  # the ESP32's firmware is modelled: its defects are lab switches

    def __init__(self, drivers: "BoardDrivers", servers: "Callable[[str], OtaServer]", artefacts: Path,
                 firmware_ca: bytes = b""):
        self.d = drivers
        self.layout = LAYOUTS[drivers.board.flash_layout]
        self._servers = servers
        self.firmware_ca = firmware_ca
        self.default_tls = "trusted" if firmware_ca else "none"
        self.server = self._use(self.default_tls)
        self.artefacts = artefacts
        self._plan: Plan | None = None  # the delivery in progress, for the server's byte listener
        self._url = ""
        self.encrypted = False  # flash encryption on (eFuse), as the baseline read it

    def _use(self, tls: str) -> OtaServer:
        server = self._servers(tls)
        if self._on_bytes not in server.listeners:
            server.on_bytes(self._on_bytes)
        return server

    def _on_bytes(self, device: str, name: str, end: int) -> None:
        plan = self._plan
        if device == self.d.board.id and plan is not None and plan.on_progress:
            plan.on_progress(end, plan.total)

    def baseline(self, version: str, signer: "Signer | None" = None) -> Installed:
        """One ROM-loader session: read the eFuse floor, write the whole boot chain at its level
        (the app signed with `signer` when it is a Secure Boot V2 key, rig.ota.releases.image).
        A flash-encrypted board takes no plaintext over the ROM loader and nobody holds its key:
        its baseline is installed over the air instead (_baseline_over_the_air)."""
        from esptool.cmds import write_flash

        from rig.drivers.espflash import EFUSE_BLK0_RDATA0, flash_encrypted

        with self.d.powered_rom_loader().loader(after="no-reset") as esp:
            floor = bin(esp.read_reg(EFUSE_BLK3_RDATA4)).count("1")
            self.encrypted = flash_encrypted(esp.read_reg(EFUSE_BLK0_RDATA0))
            ca, variant = self.firmware_ca, self.d.board.variant
            image = (releases.image(variant, version, signer, floor=floor, ca=ca) if signer is not None
                     else releases.esp32_image(version, secure_version=floor, ca=ca))
            if not self.encrypted:
                merged = factory.merge(factory.esp32_regions(image), self.layout)
                write_flash(esp, [(merged.offset, merged.data)], force=True, no_progress=True)
        if self.encrypted:
            self._baseline_over_the_air(image, version)
        return Installed(image, version, floor)

    def _baseline_over_the_air(self, image: bytes, version: str) -> None:
        """Update the board to `image` until it runs it, confirmed, from ota_0 (the slot the
        scenarios start from): one update, or two when the first lands in ota_0's sibling. Over HTTPS,
        else plain HTTP when the running app refuses the server (it embeds no CA - a factory app
        made so - or another campaign's)."""
        from rig.drivers.strategy import BOOT_LINE, parse_boot_fields

        name = f"{self.d.board.id}-{hashlib.sha256(image).hexdigest()[:16]}-baseline.bin"
        (self.artefacts / name).write_bytes(image)
        console, board = self.d.console, self.d.board.id
        for round_ in range(3):
            self.d.target.activate(console)
            self.d.power_cycle()  # drains the console while off: the boot line read next is the new one
            boot = parse_boot_fields(console.expect_line(BOOT_LINE, timeout=BASELINE_TIMEOUT_S).group("fields"))
            console.expect_line(r"rig: health ", timeout=BASELINE_TIMEOUT_S)
            # Whatever ran before may carry the same version (a factory app): only what this loop
            # installed is known to be `image`.
            if round_ and boot.get("slot") == "0" and boot.get("version", "").split("+")[0] == version:
                return
            for tls in dict.fromkeys((self.default_tls, "none")):
                console.drain()
                console.send_line(f"ota {self._use(tls).url(name, device=board)}")
                said = console.expect_line(r"rig: ota (done|refused)[^\r\n]*", timeout=BASELINE_TIMEOUT_S).group(0)
                if "done" in said:
                    break  # else over plain HTTP: the running app may trust no CA, or another one
            if "refused" in said:
                raise RigError(f"board {board} is flash-encrypted, so its baseline goes over the air, and it "
                               f"refused it: {said.strip()}")
            console.expect_line(r"rig: confirmed", timeout=BASELINE_TIMEOUT_S)
        raise RigError(f"board {board}: the baseline {version} over the air never ran from ota_0")

    def start(self, artefact: bytes, plan: Plan) -> None:
        name = f"{self.d.board.id}-{hashlib.sha256(artefact).hexdigest()[:16]}-{plan.name}"
        path = self.artefacts / name
        if not path.exists():
            path.write_bytes(artefact)
        board = self.d.board.id
        self.server = self._use(plan.tls or self.default_tls)
        self.server.restart_count(board)
        self.server.faults[board] = list(plan.faults)
        self.server.links[board] = link_profiles.profile(plan.link)
        self._plan = plan
        self._url = self.server.url(name, device=board)
        self.d.console.send_line(f"ota {self._url}")

    def resume(self, artefact: bytes, plan: Plan) -> None:
        self.d.console.send_line(f"ota {self._url}")

    def finish(self, plan: Plan) -> None:
        """The server's counts for this board since `start` go into the plan; its link and faults go."""
        board = self.d.board.id
        self._plan = None
        self.server.links.pop(board, None)
        stats = self.delivery_stats()
        plan.wire_bytes = stats.bytes_served
        # The link's own faults first; what the board refused on the way was noted already.
        plan.faults_fired[:0] = stats.faults_fired
        self.server.faults.pop(board, None)

    def delivery_stats(self) -> DeviceStats:
        """The server's counts for this board since the last `start`."""
        self.server.wait_idle(self.d.board.id)
        return self.server.device(self.d.board.id)

    def read_back(self, candidates: dict[str, bytes]) -> ReadBack:
        from esptool.cmds import read_flash

        part = self.layout.part("otadata")
        with self.d.powered_rom_loader().loader() as esp:
            table = otadata.parse(read_flash(esp, part.offset, otadata.SIZE, no_progress=True))
            index = table.active()
            found = None
            if self.encrypted:
                # The table and the slots read back as ciphertext and nobody holds the key: otadata
                # (plaintext) says which slot boots, and each candidate is named by the slot it
                # was written to - the baseline ota_0, the update the staging slot.
                slot = table.active_slot(sum(1 for p in self.layout.partitions if p.name.startswith("ota_")))
                written = {"ota_0": "old", self.staging: "new"}.get(f"ota_{slot}")
                found = written if written in candidates else None
            else:
                slots = esp_partitions.ota_slots(esp_partitions.parse(
                    read_flash(esp, esp_partitions.OFFSET, esp_partitions.MAX_LENGTH, no_progress=True),
                    self.layout.geometry.size))
                slot = table.active_slot(len(slots))
                for name, image in candidates.items():
                    md5 = esp.flash_md5sum(slots[slot].offset, len(image))
                    md5 = md5 if isinstance(md5, str) else md5.hex()
                    if md5 == hashlib.md5(image).hexdigest():
                        found = name
                        break
        state = "blank" if index is None else table.entries[index].state_name()
        entries = ", ".join(f"seq={e.seq if not e.erased else '-'} {e.state_name()}" for e in table.entries)
        # With rollback enabled (rig's ESP32 firmware) an app that confirmed itself is VALID; an
        # entry in any other state (UNDEFINED: written without a trial) is not a settled update.
        stable = index is None or table.entries[index].state == otadata.State.VALID
        crypt = "; flash-encrypted: the slot is named by what was written there, its cells are ciphertext" \
            if self.encrypted else ""
        return ReadBack(found, stable, f"otadata boots ota_{slot} ({state}); entries: {entries}{crypt}")

