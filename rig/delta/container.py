"""The container header: what a device reads before it touches flash (docs/delta-format.md).

96 bytes, little-endian, then the payload: the compressed instruction stream of a patch, or the
compressed new image itself (kind "full", no old image referenced):

    off size field
    0   4    magic          b"RDLT"
    4   1    version        2 (1 is still read: byte 7 was reserved, always a patch)
    5   1    codec          1 = P1 (LZSS, heatshrink bit format), 2 = P2 (raw LZMA1)
    6   1    codec_param    P1: window_bits << 4 | lookahead_bits; P2: LZMA properties byte
    7   1    kind           0 = patch, 1 = full image
    8   4    old_size       bytes of the source image the patch applies to; 0 for a full image
    12   4   new_size       bytes of the image it produces
    16   4   stream_size    bytes of the decoded stream (new_size for a full image)
    20   4   payload_size   bytes of payload following the header
    24   32  old_sha256     zero for a full image
    56   32  new_sha256
    88   4   payload_crc32  CRC-32 (IEEE) of the payload
    92   4   header_crc32   CRC-32 of bytes 0..91
"""

import struct
import zlib
from dataclasses import dataclass

from rig.errors import RigError

MAGIC = b"RDLT"
VERSION = 2  # written; READ_VERSIONS are read
READ_VERSIONS = (1, 2)
KIND_PATCH, KIND_FULL = 0, 1
KIND_NAMES = {KIND_PATCH: "patch", KIND_FULL: "full"}
NO_SOURCE = bytes(32)  # old_sha256 of a full image
CODEC_P1 = 1
CODEC_P2 = 2
PROFILES = {"p1": CODEC_P1, "p2": CODEC_P2}
PROFILE_NAMES = {code: name for name, code in PROFILES.items()}
_STRUCT = struct.Struct("<4sBBBBIIII32s32sI")
HEADER_SIZE = _STRUCT.size + 4


@dataclass(frozen=True)
class Header:
    kind: int
    codec: int
    codec_param: int
    old_size: int
    new_size: int
    stream_size: int
    payload_size: int
    old_sha256: bytes
    new_sha256: bytes
    payload_crc32: int
    version: int = VERSION  # as read; pack() always writes VERSION

    @property
    def profile(self) -> str:
        return PROFILE_NAMES[self.codec]

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    def pack(self) -> bytes:
        body = _STRUCT.pack(MAGIC, VERSION, self.codec, self.codec_param, self.kind, self.old_size, self.new_size,
                            self.stream_size, self.payload_size, self.old_sha256, self.new_sha256,
                            self.payload_crc32)
        return body + struct.pack("<I", zlib.crc32(body))


def parse(patch: bytes) -> Header:
    """The header of a patch, checked for shape and integrity; RigError (one line) when it is not one."""
    if len(patch) < HEADER_SIZE:
        raise RigError(f"patch truncated: {len(patch)} bytes, a header alone is {HEADER_SIZE}; "
                       "fetch the patch again")
    fields = _STRUCT.unpack_from(patch)
    magic, version, codec, param, kind, old_size, new_size, stream_size, payload_size = fields[:9]
    old_sha, new_sha, payload_crc = fields[9:]
    if magic != MAGIC:
        raise RigError(f"not a rig delta patch: magic {magic!r}, expected {MAGIC!r}")
    (header_crc,) = struct.unpack_from("<I", patch, _STRUCT.size)
    if zlib.crc32(patch[: _STRUCT.size]) != header_crc:
        raise RigError("patch header is corrupt (CRC mismatch); fetch the patch again")
    if version not in READ_VERSIONS:
        raise RigError(f"patch format version {version} unknown; this rig reads versions "
                       f"{', '.join(map(str, READ_VERSIONS))}")
    if kind not in KIND_NAMES or (version == 1 and kind != KIND_PATCH):
        raise RigError(f"patch header is corrupt: kind {kind} unknown in a version-{version} container")
    if kind == KIND_FULL and (old_size or old_sha != NO_SOURCE or stream_size != new_size):
        raise RigError("patch header is corrupt: a full image names an old image or a stream size "
                       "other than its own size")
    if codec not in PROFILE_NAMES:
        raise RigError(f"patch codec {codec} unknown; known: 1 (p1), 2 (p2)")
    if len(patch) - HEADER_SIZE != payload_size:
        raise RigError(f"patch truncated or padded: payload is {len(patch) - HEADER_SIZE} bytes, "
                       f"header says {payload_size}; fetch the patch again")
    if zlib.crc32(patch[HEADER_SIZE:]) != payload_crc:
        raise RigError("patch payload is corrupt (CRC mismatch); fetch the patch again")
    return Header(kind, codec, param, old_size, new_size, stream_size, payload_size, old_sha, new_sha, payload_crc,
                  version)
