"""Everything a campaign needs around the boards: keys, the OTA server, bootloaders, lab instruments.

    with CampaignKit(rack, workdir) as kit:
        campaign = kit.campaign(drivers, on_step=...)   # drivers: rig.drivers.BoardDrivers
        verdict = campaign.run(scenario)

The campaign key signs every release and is the key the boards' MCUboot trusts; a second key,
which no board trusts, signs the unknown-key scenario. Both are P-256 PEM files in workdir/keys,
kept between runs so a board's bootloader need not be rewritten each time.

HTTPS for the ESP32 boards: a CA made for the run (workdir/tls, rig.ota.tls.campaign_certs) is
built into every ESP32 release the campaign installs, as a real app embeds the CA of its update
server; the OTA server presents the trusted certificate by default, and for the TLS scenarios one
the firmware must refuse (another CA's, an expired one, one for another host), each from a server
of its own started on first use. `https=False` makes firmware without a CA, fetching over plain
HTTP (a fleet's releases, rig.rollout.kit, carry no campaign CA).

MCUboot for the STM32 boards: on a real rack, pass the MCUboot binary built with the campaign key
(`mcuboot=` a file per variant). A virtual board's bootloader is the virtual lab's MCUboot binary
(rig/sim/stm32/vmcuboot.py: a file format carrying the trusted keys, made here like any build
artefact; no running sim object is touched).

`defect=` makes every STM32 release of the kit - the baseline a board starts from and each
update - a defect build of rig's C app (rig.build.defects; rig.sim.broken.enable says which
defects are builds): a lab that proves the suite catches a broken firmware.
"""

import threading
from pathlib import Path

from rig.errors import RigError
from rig.image import sbv2
from rig.image.keys import Signer, load_signer, make_p256_pem, make_pem
from rig.image.layouts import LAYOUTS
from rig.ota.campaign import Campaign
from rig.ota.instruments import LabInstruments
from rig.ota.links import PROFILES
from rig.ota.server import OtaServer
from rig.ota.targets import for_board
from rig.ota.tls import HOSTS, SERVER_CERTS, campaign_certs
from rig.variants import NAMES, Bootloader, facts

# The variants whose ROM verifies Secure Boot V2 blocks (the ESP32): their releases are signed with
# the firmware key when there is one, in the scheme their ROM verifies (rig.variants).
SBV2_VARIANTS = tuple(n for n in NAMES if facts(n).bootloader is Bootloader.ESP_IDF)


def _key(path: Path):
    make_p256_pem(path)
    return load_signer(path)


def make_keys(workdir: Path) -> tuple:
    """The campaign key (which the boards' MCUboot trusts) and a key no board trusts, made on first
    use in workdir/keys and kept; returns their signers."""
    (Path(workdir) / "keys").mkdir(parents=True, exist_ok=True)
    return _key(Path(workdir) / "keys" / "campaign-p256.pem"), _key(Path(workdir) / "keys" / "untrusted-p256.pem")


def firmware_key(spec: str | Path | None) -> Signer | None:
    """The key ESP32 releases are signed with (Secure Boot V2): `spec` (PEM file or pkcs11: URI),
    else the provisioning station's own key in its default work folder (`rig provision run` makes
    it there) if there is one; None: releases go unsigned, for boards without Secure Boot."""
    if spec is None:
        from rig.provision import setup

        default = setup.firmware_key_path(setup.DEFAULT_WORKDIR, facts(SBV2_VARIANTS[0]).signing_keys[0])
        if not default.is_file():
            return None
        spec = default
    signer = load_signer(spec)
    for variant in SBV2_VARIANTS:
        facts(variant).check_signing_key(signer.public, f"--firmware-key {signer.source}")
    return signer


def lock_refusal(drivers, signer: Signer | None, line: str) -> str | None:
    """For a board whose eFuses enable Secure Boot V2 (its pre-flight `line` says so): None when it
    boots what `signer` signs (the key digest burnt in BLOCK2, read through the ROM loader, is the
    key's), else the line that says why every release would be refused and the ways out."""
    if signer is None:
        return line.replace("; way out: ", "; way out: give --firmware-key the key its station signed with, or ", 1)
    burnt = drivers.powered_flasher().read_efuses()["BLOCK2"].replace(" ", "")
    ours = sbv2.key_digest(signer.public).hex()
    if burnt == ours:
        return None
    return (f"{drivers.board.id} trusts the Secure Boot V2 key with digest {burnt[:16]}..., not --firmware-key "
            f"{signer.source} ({ours[:16]}...): it would refuse every release; give the key its station signed with")


class CampaignKit:
    def __init__(self, rack: str | Path, workdir: Path, mcuboot: dict[str, Path] | None = None,
                 host: str = "127.0.0.1", https: bool = True, defect: str | None = None,
                 firmware_signer: Signer | None = None):
        self.rack = rack
        self.defect = defect
        self.workdir = Path(workdir)
        self.artefacts = self.workdir / "artefacts"
        self.artefacts.mkdir(parents=True, exist_ok=True)
        self.signer, self.stranger = make_keys(self.workdir)
        # ESP32 releases: signed with the boards' Secure Boot V2 key (a provisioned board's station
        # key, rig.ota.kit.firmware_key), the unknown-key scenario with another key of that kind.
        self.firmware_signer = firmware_signer
        if firmware_signer is not None:
            other = self.workdir / "keys" / f"untrusted-{firmware_signer.public.kind}.pem"
            make_pem(other, firmware_signer.public.kind)
            self.firmware_stranger = load_signer(other)
        self.mcuboot = mcuboot or {}
        self.host = host
        self.certs = campaign_certs(self.workdir / "tls", (host, *(h for h in HOSTS if h != host))) if https else None
        self.firmware_ca = self.certs.ca.read_bytes() if self.certs else b""
        self._servers: dict[str, OtaServer] = {}
        self._lock = threading.Lock()
        self._instruments: LabInstruments | None = None

    def server(self, tls: str = "trusted") -> OtaServer:
        """The OTA server presenting certificate `tls` (rig.ota.tls.SERVER_CERTS; "none": plain
        HTTP), started on first use; all serve the same artefacts."""
        with self._lock:
            if tls not in self._servers:
                if tls != "none" and (self.certs is None or tls not in SERVER_CERTS):
                    raise RigError(f"no OTA server certificate {tls!r} in this campaign kit"
                                   + ("" if self.certs else " (it serves plain HTTP only)"))
                context = self.certs.context(tls) if tls != "none" and self.certs else None
                self._servers[tls] = OtaServer(self.artefacts, host=self.host, tls=context,
                                               link=PROFILES["loopback"]).__enter__()
            return self._servers[tls]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._lock:
            while self._servers:
                self._servers.popitem()[1].close()

    @property
    def instruments(self) -> LabInstruments:
        if self._instruments is None:
            self._instruments = LabInstruments(self.rack)
        return self._instruments

    def bootloader(self, board) -> bytes:
        """The MCUboot binary for `board` (rig.lab Board) that trusts the campaign key."""
        if board.variant in self.mcuboot:
            return Path(self.mcuboot[board.variant]).read_bytes()
        if not board.virtual:
            raise RigError(f"board {board.id} is real: give the MCUboot binary built with the campaign key "
                           f"{self.workdir / 'keys' / 'campaign-p256.pem'} for {board.variant}")
        from rig.sim.stm32 import vmcuboot

        return vmcuboot.build(LAYOUTS[board.flash_layout], [self.signer.public])

    def campaign(self, drivers, on_step=None, allow_otp_burn: bool = False) -> Campaign:
        target = for_board(drivers, self.artefacts, self.server, self.bootloader, self.firmware_ca, self.defect)
        # The lab's relay and counters are served on the virtual lab's own host: a board reached
        # through a coordinator (board.host) has none here.
        instruments = self.instruments if drivers.board.virtual and drivers.board.host is None else None
        signer, stranger = self.signer, self.stranger
        if self.firmware_signer is not None and drivers.board.variant in SBV2_VARIANTS:
            signer, stranger = self.firmware_signer, self.firmware_stranger
        return Campaign(drivers, target, signer, stranger, instruments, on_step, allow_otp_burn,
                        firmware_ca=self.firmware_ca)
