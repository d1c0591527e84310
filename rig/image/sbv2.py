"""ESP32 Secure Boot V2 signature sector, ECDSA-P256 scheme (ESP-IDF secure_boot_v2, espsecure).

The signed image is the app image padded with 0xFF to a 4 KiB boundary, then one 4 KiB
signature sector: up to three 1216-byte signature blocks, the rest 0xFF. A block:

    off  size
    0    1     magic 0xE7
    1    1     version: 0x03 ECDSA (0x02 is RSA-3072, not made here)
    2    1     SHA scheme: 0 = SHA-256
    3    1     0
    4    32    SHA-256 of everything before the signature sector
    36   1     curve id: 2 = P-256
    37   64    public key x || y, each little-endian
    101  64    signature r || s, each little-endian
    165  1031  0
    1196 4     CRC32 of bytes [0, 1196), little-endian
    1200 16    0

The ROM trusts a block when its key's digest (SHA-256 of bytes [36, 101)) is burned in eFuse;
here the trusted keys stand in for the eFuse digests.
"""

import hashlib
import struct
import zlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, utils

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, PublicKey, Signer

SECTOR = 4096
BLOCK_SIZE = 1216
MAX_BLOCKS = 3
MAGIC = 0xE7
VERSION_ECDSA = 0x03
VERSION_RSA = 0x02
SHA256_SCHEME = 0
CURVE_P256 = 2
CRC_AT = 1196
_ECDSA_BLOCK = struct.Struct("<BBBx32sB64s64s1031x")  # the 1196 bytes the CRC covers


class SignatureBlockError(RigError):
    """A Secure Boot V2 signature is missing, malformed, altered or not trusted; one line."""


@dataclass(frozen=True)
class SignatureBlock:
    index: int  # 0..2 within the signature sector
    version: int
    digest: bytes
    curve_id: int
    key_bytes: bytes  # curve id + point: what the eFuse key digest is taken over
    r: int
    s: int

    @property
    def key_digest(self) -> bytes:
        """What `espsecure digest-sbv2-public-key` writes and eFuse BLOCK_KEYn holds."""
        return hashlib.sha256(self.key_bytes).digest()

    def public_key(self) -> PublicKey:
        x = int.from_bytes(self.key_bytes[1:33], "little")
        y = int.from_bytes(self.key_bytes[33:65], "little")
        try:
            return PublicKey(ECDSA_P256, ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())
        except ValueError:
            raise SignatureBlockError(f"signature block {self.index}: its public key is not a P-256 point") from None


def _le(n: int) -> bytes:
    return n.to_bytes(32, "little")


def key_digest(key: PublicKey) -> bytes:
    """The eFuse digest of a public key, as the signature blocks made with it carry it."""
    return hashlib.sha256(_key_bytes(key)).digest()


def _key_bytes(key: PublicKey) -> bytes:
    if key.kind != ECDSA_P256 or not isinstance(key.key, ec.EllipticCurvePublicKey):
        raise RigError("Secure Boot V2 here is ECDSA-P256 only; give an EC P-256 key")
    n = key.key.public_numbers()
    return bytes([CURVE_P256]) + _le(n.x) + _le(n.y)


def sign(image: bytes, signer: Signer, append: bool = False) -> bytes:
    """`image` padded to 4 KiB plus a signature sector with one block, as `espsecure sign-data`.

    With `append`, `image` is already signed: its blocks are kept and one more is added (up to
    three, so a device can revoke a key and boot with the next), as `--append-signatures` does.
    """
    if append:
        body, blocks = parse(image)
        # Like espsecure, keep the valid blocks from the start of the sector up to the first gap.
        n = next((i for i, b in enumerate(blocks) if b.index != i), len(blocks))
        if not n:
            raise SignatureBlockError("nothing to append to: the image has no valid signature block 0")
        if n == MAX_BLOCKS:
            raise SignatureBlockError(f"the signature sector already holds {MAX_BLOCKS} blocks, the most there is")
        kept = bytes(image[-SECTOR:][: n * BLOCK_SIZE])
    else:
        body, kept = bytes(image) + b"\xff" * (-len(image) % SECTOR), b""
    digest = hashlib.sha256(body).digest()
    key = _key_bytes(signer.public)
    r, s = utils.decode_dss_signature(signer.sign_digest(digest))
    block = _ECDSA_BLOCK.pack(MAGIC, VERSION_ECDSA, SHA256_SCHEME, digest, key[0], key[1:], _le(r) + _le(s))
    block += struct.pack("<I", zlib.crc32(block)) + bytes(16)
    sector = kept + block
    return body + sector + b"\xff" * (SECTOR - len(sector))


def parse(data: bytes) -> tuple[bytes, list[SignatureBlock]]:
    """The signed body and the well-formed ECDSA blocks of its signature sector."""
    data = bytes(data)
    if len(data) < SECTOR or len(data) % SECTOR:
        raise SignatureBlockError(f"not Secure Boot V2 signed: {len(data)} bytes is not a multiple of "
                                  f"{SECTOR} holding an image and a signature sector")
    body, sector = data[:-SECTOR], data[-SECTOR:]
    blocks = []
    for i in range(MAX_BLOCKS):
        raw = sector[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE]
        if raw[0] != MAGIC or struct.unpack_from("<I", raw, CRC_AT)[0] != zlib.crc32(raw[:CRC_AT]):
            continue  # as the ROM: an empty or damaged slot in the sector is skipped
        magic, version, scheme, digest, curve, point, rs = _ECDSA_BLOCK.unpack_from(raw)
        if version != VERSION_ECDSA or scheme != SHA256_SCHEME or curve != CURVE_P256:
            raise SignatureBlockError(f"signature block {i}: version 0x{version:02x}, SHA scheme {scheme}, "
                                      f"curve {curve}; rig checks ECDSA-P256 with SHA-256 (0x03, 0, 2) only")
        blocks.append(SignatureBlock(i, version, digest, curve, bytes([curve]) + point,
                                     int.from_bytes(rs[:32], "little"), int.from_bytes(rs[32:], "little")))
    return body, blocks


def verify(data: bytes, trusted_keys: list[PublicKey]) -> SignatureBlock:
    """The first block that the ROM would accept with these keys burned; else one clear error."""
    body, blocks = parse(data)
    if not blocks:
        raise SignatureBlockError("no valid signature block (magic 0xE7, CRC32) in the last 4 KiB sector")
    digest = hashlib.sha256(body).digest()
    trusted = {key_digest(k) for k in trusted_keys}
    problem = ""
    for block in blocks:
        if block.digest != digest:
            problem = "image digest mismatch: the image was altered after signing"
        elif block.key_digest not in trusted:
            problem = problem or f"signature block {block.index} names a key that is not trusted"
        elif block.public_key().verify_digest(utils.encode_dss_signature(block.r, block.s), digest):
            return block
        else:
            problem = f"bad signature in block {block.index}: it does not verify with its trusted key"
    raise SignatureBlockError(problem)
