"""SMP messages as Zephyr's mcumgr reads and writes them: the 8-byte header, error codes, CBOR bodies.

Header (big-endian): byte 0 = op (bits 0-2) | version (bits 3-4), flags, length u16, group u16,
sequence u8, command id u8. Version 0 is the original protocol (errors as {"rc": MGMT_ERR}),
version 1 is SMP v2 (group errors as {"err": {"group", "rc"}}).

Bodies are decoded with cbor2. Responses are encoded the way zcbor does without
CONFIG_ZCBOR_CANONICAL - maps and lists of indefinite length - so our replies are byte for byte
what a Zephyr board sends.
"""

import io
import struct
from dataclasses import dataclass
from enum import IntEnum

import cbor2

HEADER = struct.Struct(">BBHHBB")
HEADER_SIZE = HEADER.size
VERSION_1 = 0  # the original protocol
VERSION_2 = 1


class Op(IntEnum):
    READ = 0
    READ_RSP = 1
    WRITE = 2
    WRITE_RSP = 3


class Group(IntEnum):
    OS = 0
    IMAGE = 1


class MgmtErr(IntEnum):
    """mcumgr_err_t: errors of the SMP layer itself, answered as {"rc": code}."""

    EOK = 0
    EUNKNOWN = 1
    ENOMEM = 2
    EINVAL = 3
    ETIMEOUT = 4
    ENOENT = 5
    EBADSTATE = 6
    EMSGSIZE = 7
    ENOTSUP = 8
    ECORRUPT = 9
    EBUSY = 10
    EACCESSDENIED = 11
    UNSUPPORTED_TOO_OLD = 12
    UNSUPPORTED_TOO_NEW = 13


@dataclass(frozen=True)
class Header:
    op: int
    version: int
    flags: int
    length: int
    group: int
    seq: int
    cmd: int

    @classmethod
    def unpack(cls, data: bytes) -> "Header":
        b0, flags, length, group, seq, cmd = HEADER.unpack_from(data)
        return cls(b0 & 0x07, (b0 >> 3) & 0x03, flags, length, group, seq, cmd)

    def response(self, length: int) -> bytes:
        """smp_make_rsp_hdr: same group/seq/id, the response op, a version this server speaks."""
        op = Op.READ_RSP if self.op == Op.READ else Op.WRITE_RSP
        version = min(self.version, VERSION_2)
        return HEADER.pack(op | version << 3, 0, length, self.group, self.seq, self.cmd)


class MgmtError(Exception):
    """The request fails at the SMP layer: the reply is {"rc": code}."""

    def __init__(self, rc: MgmtErr):
        super().__init__(rc.name)
        self.rc = rc


class GroupError(Exception):
    """A command-specific error (smp_add_cmd_err): {"err": {...}} in v2, translated to rc in v1."""

    def __init__(self, group: Group, rc: int):
        super().__init__(f"group {group} rc {rc}")
        self.group = group
        self.rc = rc


# zcbor decoders the handlers use, by the Python type cbor2 yields for a value they accept.
U32 = "u32"
BSTR = "bstr"
TSTR = "tstr"
BOOL = "bool"


def _accepts(kind: str, value: object) -> bool:
    if kind == U32:
        return type(value) is int and 0 <= value <= 0xFFFF_FFFF
    return type(value) is {BSTR: bytes, TSTR: str, BOOL: bool}[kind]


def decode_map(body: bytes, fields: dict[str, str]) -> dict:
    """zcbor_map_decode_bulk: a map with text keys; known keys must hold their type, others are skipped.

    Anything else - not CBOR, not a map, a wrong type - is MGMT_ERR_EINVAL, as the handlers return.
    """
    try:
        decoded = cbor2.CBORDecoder(io.BytesIO(body)).decode()
    except Exception as exc:  # cbor2 raises many types on hostile input; all mean "not a valid body"
        raise MgmtError(MgmtErr.EINVAL) from exc
    if not isinstance(decoded, dict) or not all(type(k) is str for k in decoded):
        raise MgmtError(MgmtErr.EINVAL)
    values = {}
    for key, kind in fields.items():
        if key in decoded:
            if not _accepts(kind, decoded[key]):
                raise MgmtError(MgmtErr.EINVAL)
            values[key] = decoded[key]
    return values


def encode(value: object) -> bytes:
    """CBOR as zcbor writes it: indefinite-length maps and lists, minimal-length scalars."""
    if isinstance(value, dict):
        return b"\xbf" + b"".join(encode(k) + encode(v) for k, v in value.items()) + b"\xff"
    if isinstance(value, list):
        return b"\x9f" + b"".join(encode(v) for v in value) + b"\xff"
    return cbor2.dumps(value)
