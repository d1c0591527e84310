"""ESP32 Secure Boot V2 signature sector (ESP-IDF secure_boot_v2, espsecure), RSA-3072 and ECDSA-P256.

The signed image is the app image padded with 0xFF to a 4 KiB boundary, then one 4 KiB
signature sector: up to three 1216-byte signature blocks, the rest 0xFF. Every block starts with
magic 0xE7, a version byte and the SHA-256 of everything before the signature sector, and ends
with a CRC32 of its first 1196 bytes and 16 zero bytes. Which version a chip verifies is a fact
of its variant (rig.variants: `signing_keys`): the original ESP32 (rev >= 3.0) knows RSA-3072
only; ECDSA blocks are for the C2, C6, H2 and later chips.

    RSA-3072, version 0x02               ECDSA-P256, version 0x03
    off  size                            off  size
    0    1    magic 0xE7                 0    1    magic 0xE7
    1    1    0x02                       1    1    0x03
    2    2    0                          2    1    SHA scheme: 0 = SHA-256
    4    32   image digest               3    1    0
    36   384  modulus n (LE)             4    32   image digest
    420  4    exponent e                 36   1    curve id: 2 = P-256
    424  384  rinv = 2^6144 mod n (LE)   37   64   public key x || y, each LE
    808  4    m' = -n^-1 mod 2^32        101  64   signature r || s, each LE
    812  384  RSA-PSS signature (LE)     165  1031 0
    1196 4    CRC32                      1196 4    CRC32
    1200 16   0                          1200 16   0

rinv and m' are the Montgomery parameters the chip's RSA peripheral works with. The RSA
signature is PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt over the image digest. The chip
trusts a block when the SHA-256 of its key part ([36, 812) for RSA, [36, 101) for ECDSA) is the
digest burnt in eFuse; `espsecure digest-sbv2-public-key` computes the same digest from a key file.
"""

import hashlib
import struct
import zlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, KINDS, RSA_3072, PublicKey, Signer

SECTOR = 4096
BLOCK_SIZE = 1216
MAX_BLOCKS = 3
MAGIC = 0xE7
VERSION_RSA = 0x02
VERSION_ECDSA = 0x03
VERSIONS = {RSA_3072: VERSION_RSA, ECDSA_P256: VERSION_ECDSA}  # the key kind each block version carries
SHA256_SCHEME = 0
CURVE_P256 = 2
CRC_AT = 1196
KEY_AT = 36
RSA_BYTES = 384
_RSA_KEY = struct.Struct("<384sI384sI")  # n, e, rinv, m': what the eFuse key digest is taken over
_RSA_BLOCK = struct.Struct("<BBxx32s776s384s")  # the 1196 bytes the CRC covers
_ECDSA_BLOCK = struct.Struct("<BBBx32s65s64s1031x")  # ... with the key part: curve id + point


class SignatureBlockError(RigError):
    """A Secure Boot V2 signature is missing, malformed, altered or not trusted; one line."""


@dataclass(frozen=True)
class SignatureBlock:
    index: int  # 0..2 within the signature sector
    version: int  # VERSION_RSA or VERSION_ECDSA
    digest: bytes
    key_bytes: bytes  # the block's key part: what the eFuse key digest is taken over
    signature: bytes  # as the block holds it (little-endian numbers)

    @property
    def kind(self) -> str:
        return RSA_3072 if self.version == VERSION_RSA else ECDSA_P256

    @property
    def key_digest(self) -> bytes:
        """What `espsecure digest-sbv2-public-key` writes and the eFuse key block holds."""
        return hashlib.sha256(self.key_bytes).digest()

    def public_key(self) -> PublicKey:
        if self.version == VERSION_RSA:
            n_le, e, _, _ = _RSA_KEY.unpack(self.key_bytes)
            n = int.from_bytes(n_le, "little")
            try:
                if n.bit_length() != 3072:
                    raise ValueError
                return PublicKey(RSA_3072, rsa.RSAPublicNumbers(e, n).public_key())
            except ValueError:
                raise SignatureBlockError(f"signature block {self.index}: its key is not an RSA-3072 key") from None
        x = int.from_bytes(self.key_bytes[1:33], "little")
        y = int.from_bytes(self.key_bytes[33:65], "little")
        try:
            return PublicKey(ECDSA_P256, ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())
        except ValueError:
            raise SignatureBlockError(f"signature block {self.index}: its public key is not a P-256 point") from None

    def verifies(self, key: PublicKey, digest: bytes) -> bool:
        if self.version == VERSION_RSA:
            return key.verify_digest(self.signature[::-1], digest)
        r, s = int.from_bytes(self.signature[:32], "little"), int.from_bytes(self.signature[32:], "little")
        return key.verify_digest(utils.encode_dss_signature(r, s), digest)


def key_digest(key: PublicKey) -> bytes:
    """The eFuse digest of a public key, as the signature blocks made with it carry it."""
    return hashlib.sha256(_key_bytes(key)).digest()


def _key_bytes(key: PublicKey) -> bytes:
    if isinstance(key.key, rsa.RSAPublicKey) and key.kind == RSA_3072:
        numbers = key.key.public_numbers()
        m_dash = -pow(numbers.n, -1, 1 << 32) & 0xFFFFFFFF
        rinv = (1 << 2 * 3072) % numbers.n
        return _RSA_KEY.pack(numbers.n.to_bytes(RSA_BYTES, "little"), numbers.e, rinv.to_bytes(RSA_BYTES, "little"),
                             m_dash)
    if isinstance(key.key, ec.EllipticCurvePublicKey) and key.kind == ECDSA_P256:
        point = key.key.public_numbers()
        return bytes([CURVE_P256]) + point.x.to_bytes(32, "little") + point.y.to_bytes(32, "little")
    raise RigError(f"Secure Boot V2 signs with RSA-3072 or EC P-256 keys; this is an {KINDS[key.kind]} key")


def _block(digest: bytes, signer: Signer) -> bytes:
    key = _key_bytes(signer.public)
    signature = signer.sign_digest(digest)
    if signer.public.kind == RSA_3072:
        body = _RSA_BLOCK.pack(MAGIC, VERSION_RSA, digest, key, signature[::-1])
    else:
        r, s = utils.decode_dss_signature(signature)
        body = _ECDSA_BLOCK.pack(MAGIC, VERSION_ECDSA, SHA256_SCHEME, digest, key,
                                 r.to_bytes(32, "little") + s.to_bytes(32, "little"))
    return body + struct.pack("<I", zlib.crc32(body)) + bytes(16)


def sign(image: bytes, signer: Signer, append: bool = False) -> bytes:
    """`image` padded to 4 KiB plus a signature sector with one block, as `espsecure sign-data`;
    the block's scheme is the key's (RSA-3072 or ECDSA-P256).

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
    sector = kept + _block(hashlib.sha256(body).digest(), signer)
    return body + sector + b"\xff" * (SECTOR - len(sector))


def _parse_block(i: int, raw: bytes) -> SignatureBlock:
    version = raw[1]
    if version == VERSION_RSA:
        _, _, digest, key, signature = _RSA_BLOCK.unpack_from(raw)
        return SignatureBlock(i, version, digest, key, signature)
    _, _, scheme, digest, key, signature = _ECDSA_BLOCK.unpack_from(raw)
    if version != VERSION_ECDSA or scheme != SHA256_SCHEME or key[0] != CURVE_P256:
        raise SignatureBlockError(f"signature block {i}: version 0x{version:02x}, SHA scheme {scheme}, curve "
                                  f"{key[0]}; rig knows RSA-3072 (0x02) and ECDSA-P256 with SHA-256 (0x03, 0, 2)")
    return SignatureBlock(i, version, digest, key, signature)


def parse(data: bytes) -> tuple[bytes, list[SignatureBlock]]:
    """The signed body and the well-formed blocks of its signature sector."""
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
        blocks.append(_parse_block(i, raw))
    return body, blocks


def verify(data: bytes, trusted_keys: list[PublicKey], kinds: tuple[str, ...]) -> SignatureBlock:
    """The first block that a chip verifying `kinds` would accept with these keys burned; else one
    clear error. A block of another scheme is one that chip cannot check: it counts as no block."""
    body, blocks = parse(data)
    usable = [b for b in blocks if b.kind in kinds]
    if not usable:
        other = f" ({', '.join(sorted({KINDS[b.kind] for b in blocks}))} only)" if blocks else ""
        raise SignatureBlockError(f"no valid {' or '.join(KINDS[k] for k in kinds)} signature block (magic 0xE7, "
                                  f"CRC32) in the last 4 KiB sector{other}")
    digest = hashlib.sha256(body).digest()
    trusted = {key_digest(k): k for k in trusted_keys if k.kind in kinds}
    problem = ""
    for block in usable:
        if block.digest != digest:
            problem = "image digest mismatch: the image was altered after signing"
        elif block.key_digest not in trusted:
            problem = problem or f"signature block {block.index} names a key that is not trusted"
        elif block.verifies(trusted[block.key_digest], digest):
            return block
        else:
            problem = f"bad signature in block {block.index}: it does not verify with its trusted key"
    raise SignatureBlockError(problem)
