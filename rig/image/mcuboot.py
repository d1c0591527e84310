"""MCUboot images: parse, verify strictly, sign (mcu-tools/mcuboot bootutil/image.h, imgtool).

    [0, 32)                      header: magic 0x96f3b83d, load_addr, hdr_size, protect_tlv_size,
                                 img_size, flags, version (u8 major, u8 minor, u16 rev, u32 build)
    [32, hdr_size)               header padding
    [hdr_size, hdr+img)          payload (the application binary)
    [hdr+img, +protect_tlv_size) protected TLVs {0x6908, total} - covered by the hash (SEC_CNT here)
    then                         TLVs {0x6907, total}: SHA256 (0x10), KEYHASH (0x01), signature
    then                         in a padded image: erased bytes up to the trailer (rig.image.trailer)

Each TLV is {u16 type, u16 len, value}; `total` includes its 4-byte info header. SHA-256 covers
[0, hdr + img + protect_tlv_size). Every error is an ImageError of one line, also for inputs that
imgtool itself crashes on (truncation, lying lengths).
"""

import hashlib
import re
import struct
from dataclasses import dataclass, field

from rig.errors import RigError
from rig.image.keys import PublicKey, Signer
from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import Trailer, apply

IMAGE_MAGIC = 0x96F3B83D
HEADER = struct.Struct("<IIHHIIBBHII")  # ends with pad1 u32 (0)
HEADER_SIZE = HEADER.size  # 32
TLV_INFO = struct.Struct("<HH")
TLV_HEAD = struct.Struct("<HH")
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
IMAGE_F_RAM_LOAD = 0x20
IMAGE_F_ENCRYPTED = 0x04 | 0x08  # AES-128 or AES-256

TLV_KEYHASH = 0x01
TLV_PUBKEY = 0x02
TLV_SHA256 = 0x10
TLV_RSA2048 = 0x20
TLV_ECDSA = 0x22
TLV_SEC_CNT = 0x50
TLV_NAMES = {TLV_KEYHASH: "KEYHASH", TLV_PUBKEY: "PUBKEY", TLV_SHA256: "SHA256", 0x11: "SHA384",
             0x12: "SHA512", TLV_RSA2048: "RSA2048", TLV_ECDSA: "ECDSASIG", 0x23: "RSA3072", 0x24: "ED25519",
             0x40: "DEPENDENCY", TLV_SEC_CNT: "SEC_CNT", 0x60: "BOOT_RECORD"}
# As MCUboot, types that carry a promise about the image only count when the hash covers them.
PROTECTED_ONLY = {TLV_SEC_CNT, 0x40, 0x60}
FLAG_NAMES = {0x01: "PIC", 0x04: "ENCRYPTED_AES128", 0x08: "ENCRYPTED_AES256", 0x10: "NON_BOOTABLE",
              0x20: "RAM_LOAD", 0x100: "ROM_FIXED", 0x200: "COMPRESSED_LZMA1", 0x400: "COMPRESSED_LZMA2",
              0x800: "COMPRESSED_ARM_THUMB"}


class ImageError(RigError):
    """An MCUboot image is malformed, altered or not trusted; one line saying which."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    revision: int
    build: int = 0

    @classmethod
    def parse(cls, text: str) -> "Version":
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:\+(\d+))?", text.strip())
        if not m:
            raise RigError(f"version {text!r}: expected MAJOR.MINOR.REVISION[+BUILD], e.g. 1.2.3+4")
        v = cls(*(int(g or 0) for g in m.groups()))
        if v.major > 0xFF or v.minor > 0xFF or v.revision > 0xFFFF or v.build > 0xFFFF_FFFF:
            raise RigError(f"version {text!r}: fields are limited to 255.255.65535+4294967295")
        return v

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@dataclass(frozen=True)
class Tlv:
    type: int
    offset: int  # of the value, from the start of the image
    value: bytes

    @property
    def name(self) -> str:
        return TLV_NAMES.get(self.type, f"0x{self.type:02x}")


@dataclass(frozen=True)
class McubootImage:
    load_addr: int
    header_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: Version
    protected_tlvs: tuple[Tlv, ...]
    tlvs: tuple[Tlv, ...]
    size: int  # header + payload + both TLV areas: the bytes that belong to the image
    hash_region: bytes = field(repr=False)  # [0, hdr + img + protect_tlv_size)

    @property
    def payload_range(self) -> tuple[int, int]:
        return self.header_size, self.header_size + self.img_size

    @property
    def payload(self) -> bytes:
        return self.hash_region[self.header_size : self.header_size + self.img_size]

    def find(self, tlv_type: int, protected: bool = False) -> list[Tlv]:
        return [t for t in (self.protected_tlvs if protected else self.tlvs) if t.type == tlv_type]

    @property
    def security_counter(self) -> int | None:
        found = self.find(TLV_SEC_CNT, protected=True)
        return struct.unpack("<I", found[0].value)[0] if found else None

    @property
    def key_hashes(self) -> list[bytes]:
        """Hashes of the keys the image names as its signers (KEYHASH, or a whole PUBKEY)."""
        return [h for h in map(_named_key_hash, self.tlvs) if h is not None]

    @property
    def flag_names(self) -> list[str]:
        return [name for bit, name in FLAG_NAMES.items() if self.flags & bit] + (
            [f"0x{self.flags & ~sum(FLAG_NAMES):x}"] if self.flags & ~sum(FLAG_NAMES) else [])

    def to_dict(self) -> dict:
        def tlv(t: Tlv) -> dict:
            return {"type": t.type, "name": t.name, "offset": t.offset, "len": len(t.value), "value": t.value.hex()}

        return {
            "format": "mcuboot",
            "version": str(self.version),
            "load_addr": self.load_addr,
            "header_size": self.header_size,
            "img_size": self.img_size,
            "protect_tlv_size": self.protect_tlv_size,
            "flags": self.flag_names,
            "payload": list(self.payload_range),
            "size": self.size,
            "security_counter": self.security_counter,
            "protected_tlvs": [tlv(t) for t in self.protected_tlvs],
            "tlvs": [tlv(t) for t in self.tlvs],
        }


def parse(data: bytes) -> McubootImage:
    """Parse the structure, checking every length against the bytes present. No crypto."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise ImageError(f"truncated: {len(data)} bytes, an MCUboot header alone is {HEADER_SIZE}")
    magic, load_addr, hdr_size, prot_size, img_size, flags, major, minor, rev, build, _ = HEADER.unpack_from(data)
    if magic != IMAGE_MAGIC:
        raise ImageError(f"not an MCUboot image: magic 0x{magic:08x}, expected 0x{IMAGE_MAGIC:08x}")
    if hdr_size < HEADER_SIZE:
        raise ImageError(f"header size {hdr_size} is smaller than the {HEADER_SIZE}-byte header")
    end = hdr_size + img_size
    if end > len(data):
        raise ImageError(f"truncated: header and payload need {end} bytes, the file has {len(data)}")
    protected: tuple[Tlv, ...] = ()
    if prot_size:
        protected = _tlv_area(data, end, TLV_PROT_INFO_MAGIC, "protected TLV area")
        total = TLV_INFO.unpack_from(data, end)[1]
        if total != prot_size:
            raise ImageError(f"protected TLV area is {total} bytes but the header says {prot_size}")
    elif len(data) >= end + TLV_INFO.size and TLV_INFO.unpack_from(data, end)[0] == TLV_PROT_INFO_MAGIC:
        raise ImageError("protected TLV area present but the header's protect_tlv_size is 0")
    hashed = end + prot_size
    tlvs = _tlv_area(data, hashed, TLV_INFO_MAGIC, "TLV area")
    for t in tlvs:
        if t.type in PROTECTED_ONLY:
            raise ImageError(f"TLV {t.name} outside the protected area, where the hash does not cover it")
    return McubootImage(load_addr, hdr_size, prot_size, img_size, flags, Version(major, minor, rev, build),
                        protected, tlvs, hashed + TLV_INFO.unpack_from(data, hashed)[1], data[:hashed])


def _tlv_area(data: bytes, off: int, magic: int, what: str) -> tuple[Tlv, ...]:
    if off + TLV_INFO.size > len(data):
        raise ImageError(f"truncated: {what} info expected at offset {off}, the file has {len(data)} bytes")
    found, total = TLV_INFO.unpack_from(data, off)
    if found != magic:
        raise ImageError(f"{what} at offset {off}: magic 0x{found:04x}, expected 0x{magic:04x}")
    end = off + total
    if total < TLV_INFO.size or end > len(data):
        raise ImageError(f"truncated: {what} at offset {off} says {total} bytes, {len(data) - off} present")
    tlvs = []
    pos = off + TLV_INFO.size
    while pos < end:
        if pos + TLV_HEAD.size > end:
            raise ImageError(f"{what}: TLV header at offset {pos} runs past the area's end at {end}")
        tlv_type, length = TLV_HEAD.unpack_from(data, pos)
        value_at = pos + TLV_HEAD.size
        if value_at + length > end:
            raise ImageError(f"{what}: TLV 0x{tlv_type:02x} at offset {pos} ({length} bytes) runs past {end}")
        tlvs.append(Tlv(tlv_type, value_at, data[value_at : value_at + length]))
        pos = value_at + length
    return tuple(tlvs)


def verify(data: bytes, trusted_keys: list[PublicKey], min_security_counter: int | None = None,
           slot_size: int | None = None) -> McubootImage:
    """Check an image as MCUboot would before booting it, and more strictly.

    `slot_size` is the room the slot leaves for header + payload + TLVs: Trailer.max_image_size,
    or trailer.swap_move_room for images that swap-using-move must be able to move.
    """
    img = parse(data)
    if slot_size is not None and img.size > slot_size:
        raise ImageError(f"image of {img.size} bytes is too big for its slot, which holds {slot_size}")
    if img.flags & IMAGE_F_ENCRYPTED:
        # The hash covers the plaintext; checking it would need the device's decryption key.
        raise ImageError(f"encrypted image (flags {', '.join(img.flag_names)}): rig cannot check its hash")
    hashes = img.find(TLV_SHA256)
    if len(hashes) != 1:
        raise ImageError(f"{'no' if not hashes else 'more than one'} SHA256 TLV; the image cannot be checked")
    if len(hashes[0].value) != 32 or hashlib.sha256(img.hash_region).digest() != hashes[0].value:
        raise ImageError("hash mismatch: the image was altered after signing")
    _check_signature(img, hashes[0].value, trusted_keys)
    if min_security_counter is not None:
        counter = img.security_counter
        if counter is None:
            raise ImageError(f"no protected security counter; this device requires >= {min_security_counter}")
        if counter < min_security_counter:
            raise ImageError(f"security counter {counter} is below the floor {min_security_counter} (rollback)")
    return img


def _check_signature(img: McubootImage, digest: bytes, trusted_keys: list[PublicKey]) -> None:
    # As bootutil_img_validate: a KEYHASH (or a whole PUBKEY, imgtool --public-key-format full)
    # selects the key for the signature TLVs that follow it.
    by_hash = {k.keyhash: k for k in trusted_keys}
    key: PublicKey | None = None
    keyhash_seen = signature_seen = False
    for t in img.tlvs:
        named = _named_key_hash(t)
        if named is not None:
            keyhash_seen = True
            key = by_hash.get(named)
        elif t.type in (TLV_ECDSA, TLV_RSA2048):
            signature_seen = True
            if key is not None and t.type == key.sig_tlv and key.verify_digest(t.value, digest):
                return
            if key is not None:
                raise ImageError(f"bad signature: {t.name} does not verify with the trusted key it names")
    if not signature_seen:
        raise ImageError("missing signature: no ECDSASIG (0x22) or RSA2048 (0x20) TLV")
    if not keyhash_seen:
        raise ImageError("no KEYHASH or PUBKEY TLV: the image does not say which key signed it")
    raise ImageError("unknown key hash: signed by a key that is not among the trusted keys")


def _named_key_hash(t: Tlv) -> bytes | None:
    if t.type == TLV_KEYHASH:
        return t.value
    return hashlib.sha256(t.value).digest() if t.type == TLV_PUBKEY else None


def sign(payload: bytes, signer: Signer, version: Version | str, security_counter: int | None = None,
         header_size: int = MCUBOOT_HEADER_SIZE, load_addr: int = 0, pad_to_slot: Trailer | None = None,
         confirm: bool = False, test: bool = False, erased: int = 0xFF) -> bytes:
    """An MCUboot image of `payload`, byte for byte as `imgtool sign --pad-header` makes it.

    With `pad_to_slot` the result fills the slot, the trailer carries the magic - a pending test
    upgrade once in the secondary slot, which `test` asks for explicitly - and, with `confirm`,
    image_ok: a permanent upgrade. The header padding and the fill take the slot's erased value
    (`erased` without a slot).
    """
    version = Version.parse(version) if isinstance(version, str) else version
    if (confirm or test) and pad_to_slot is None:
        raise RigError("confirm and test mark the trailer; they need padding to a slot")
    if confirm and test:
        raise RigError("an image is either a test (pending) or a confirmed (permanent) upgrade, not both")
    if not HEADER_SIZE <= header_size <= 0xFFFF:
        raise RigError(f"header size {header_size} must be {HEADER_SIZE}..65535 bytes")
    if security_counter is not None and not 0 <= security_counter <= 0xFFFF_FFFF:
        raise RigError(f"security counter {security_counter} must fit 32 bits")
    if pad_to_slot is not None:
        erased = pad_to_slot.erased
    prot = _tlv_bytes(TLV_PROT_INFO_MAGIC, [(TLV_SEC_CNT, struct.pack("<I", security_counter))]
                      if security_counter is not None else [])
    flags = IMAGE_F_RAM_LOAD if load_addr else 0
    header = HEADER.pack(IMAGE_MAGIC, load_addr, header_size, len(prot), len(payload), flags,
                         version.major, version.minor, version.revision, version.build, 0)
    hashed = header + bytes([erased]) * (header_size - HEADER_SIZE) + bytes(payload) + prot
    digest = hashlib.sha256(hashed).digest()
    tlvs = [(TLV_SHA256, digest), (TLV_KEYHASH, signer.public.keyhash),
            (signer.public.sig_tlv, signer.sign_digest(digest))]
    image = hashed + _tlv_bytes(TLV_INFO_MAGIC, tlvs)
    if pad_to_slot is None:
        return image
    if len(image) > pad_to_slot.max_image_size:
        raise RigError(f"image of {len(image)} bytes is too big for the slot: {pad_to_slot.max_image_size} "
                       f"bytes are left before the {pad_to_slot.size}-byte trailer")
    slot = bytearray(image) + bytes([erased]) * (pad_to_slot.slot_size - len(image))
    return bytes(apply(slot, [pad_to_slot.write_magic()] + ([pad_to_slot.write_image_ok()] if confirm else [])))


def _tlv_bytes(magic: int, tlvs: list[tuple[int, bytes]]) -> bytes:
    if not tlvs:
        return b""
    body = b"".join(TLV_HEAD.pack(t, len(v)) + v for t, v in tlvs)
    return TLV_INFO.pack(magic, TLV_INFO.size + len(body)) + body
