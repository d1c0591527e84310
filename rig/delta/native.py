"""The device's own delta applier (firmware/lib/, C) on the host, through ctypes.

The virtual boards apply every delta with this, so the lab exercises the code that ships. The
library is compiled on first use with the system gcc into $XDG_CACHE_HOME/rig (default
~/.cache/rig) under a name derived from the sources and flags, so an edited source rebuilds and
concurrent test workers share one build.

    apply(old: bytes, patch: bytes) -> bytes
    apply_stream(patch, read_old, write_new, page_size, resume_at=0, new_capacity=None) -> None

apply_stream is what a virtual board calls: patch is bytes or a binary file object read
sequentially; read_old(offset, length) -> bytes reads the running slot; write_new(offset, data)
programs the other slot one page at a time (the last page may be short). After a power cut,
call it again with resume_at = the first page that was not completely written: pages below are
decoded again and checked but not written. An exception raised by a callback (a PowerCut from
the flash model, say) stops the applier and is re-raised unchanged.
"""

import ctypes
import hashlib
import io
import os
import subprocess
import tempfile
from pathlib import Path

from rig.errors import RigError

SOURCE_DIR = Path(__file__).resolve().parents[2] / "firmware" / "lib"
# No -Werror here: a user's newer gcc may warn; tests/delta/test_c_build.py holds the code to -Werror.
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC",
          "-DRDELTA_WITH_LZSS", "-DRDELTA_WITH_LZMA"]

# rdelta.h's error codes, as the one line a user sees.
ERRORS = {
    -1: "not a rig delta patch, or its header is corrupt",
    -2: "patch format version unknown to the applier",
    -3: "patch codec or codec parameters not supported by the applier",
    -4: "wrong source image: the old slot is not the image the patch was made from",
    -5: "patch truncated: it ends before its payload does; fetch it again",
    -6: "patch instructions are corrupt",
    -7: "patch payload is corrupt (CRC mismatch); fetch it again",
    -8: "patch result does not match its SHA-256; the patch is corrupt",
    -9: "flash or patch read/write failed",
    -10: "page size, resume offset or slot capacity unusable for this patch",
}

_READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint8),
                         ctypes.c_uint32)
_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint8),
                          ctypes.c_uint32)


class _IO(ctypes.Structure):
    _fields_ = [("read_patch", _READ), ("read_old", _READ), ("write_new", _WRITE), ("ctx", ctypes.c_void_p),
                ("page", ctypes.POINTER(ctypes.c_uint8)), ("page_size", ctypes.c_uint32),
                ("new_capacity", ctypes.c_uint32)]


_lib = None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rig"


def library_path() -> Path:
    """Build the host library if its sources or flags changed; return its path."""
    sources = sorted(SOURCE_DIR.glob("*.[ch]"))
    if not sources:
        raise RigError(f"delta applier sources missing: no C files in {SOURCE_DIR}; check out firmware/lib")
    key = hashlib.sha256(" ".join(CFLAGS).encode())
    for src in sources:
        key.update(src.name.encode() + src.read_bytes())
    lib = _cache_dir() / f"rdelta-{key.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rdelta-", suffix=".so", dir=lib.parent)
    except OSError as exc:
        raise RigError(f"cannot write the delta applier build to {lib.parent}: {exc.strerror}; "
                       "set XDG_CACHE_HOME to a writable directory") from None
    os.close(fd)
    cmd = ["gcc", *CFLAGS, "-o", tmp, *(str(s) for s in sources if s.suffix == ".c")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        os.unlink(tmp)
        raise RigError("gcc not found: the delta applier is built for the host with gcc; install gcc") from None
    if done.returncode:
        os.unlink(tmp)
        first = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise RigError(f"building the delta applier failed: {first}")
    os.replace(tmp, lib)  # atomic, so concurrent builders never load half a library
    return lib


def _load():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(str(library_path()))
        lib.rdelta_apply.argtypes = [ctypes.c_void_p, ctypes.POINTER(_IO), ctypes.c_uint32]
        lib.rdelta_apply.restype = ctypes.c_int
        lib.rdelta_state_size.restype = ctypes.c_uint32
        _lib = lib
    return _lib


def state_size() -> int:
    """Bytes of the applier's state struct in the host build (both codecs)."""
    return _load().rdelta_state_size()


def apply_stream(patch, read_old, write_new, page_size: int, resume_at: int = 0,
                 new_capacity: int | None = None) -> None:
    """Apply a patch with the C applier through flash-like callbacks (see the module docstring)."""
    lib = _load()
    src = io.BytesIO(patch) if isinstance(patch, bytes | bytearray | memoryview) else patch
    raised: list[BaseException] = []

    def guarded(fn):
        # ctypes cannot carry a Python exception through C: park it, tell C "I/O error", re-raise.
        def call(*args):
            try:
                return fn(*args)
            except BaseException as exc:  # re-raised below, whatever it is
                raised.append(exc)
                return -1

        return call

    def read_patch(_ctx, _offset, buf, length):
        data = src.read(length)
        ctypes.memmove(buf, data, len(data))
        return len(data)

    def read_old_cb(_ctx, offset, buf, length):
        data = read_old(offset, length)
        if len(data) != length:
            raise RigError(f"old slot read at 0x{offset:x}+{length} returned {len(data)} bytes")
        ctypes.memmove(buf, data, length)
        return 0

    def write_new_cb(_ctx, offset, buf, length):
        write_new(offset, ctypes.string_at(buf, length))
        return 0

    page = (ctypes.c_uint8 * page_size)()
    cbs = (_READ(guarded(read_patch)), _READ(guarded(read_old_cb)), _WRITE(guarded(write_new_cb)))
    iov = _IO(*cbs, None, page, page_size, 0xFFFFFFFF if new_capacity is None else new_capacity)
    state = ctypes.create_string_buffer(lib.rdelta_state_size())
    rc = lib.rdelta_apply(state, ctypes.byref(iov), resume_at)
    if raised:
        raise raised[0]
    if rc:
        raise RigError(ERRORS.get(rc, f"delta applier failed with code {rc}"))


def apply(old: bytes, patch: bytes, page_size: int = 4096) -> bytes:
    """The new image, rebuilt by the C applier from in-memory images."""
    out = bytearray()

    def write_new(offset: int, data: bytes) -> None:
        out[offset : offset + len(data)] = data

    def read_old(offset: int, length: int) -> bytes:
        # Like a slot: the image is its first bytes, erased flash follows.
        return old[offset : offset + length].ljust(length, b"\xff")

    apply_stream(patch, read_old, write_new, page_size)
    return bytes(out)
