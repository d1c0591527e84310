"""make / apply / info: the Python side of delta containers (see the package docstring)."""

import hashlib
import zlib
from dataclasses import dataclass

from rig.delta import codecs, container, ops
from rig.errors import RigError

# Zero-run cut lengths make() tries per profile (see rig.delta.ops); measured on the corpus:
# LZSS pays per zero byte, so it wants runs cut early; LZMA codes zeros almost for free and
# prefers few ops.
GAPS = {"p1": (128, 256, 512), "p2": (1024,)}

CODEC_NAMES = {container.CODEC_P1: "LZSS (heatshrink format, window 2^8, lookahead 2^7)",
               container.CODEC_P2: "LZMA1 raw, 4 KiB dictionary"}


@dataclass(frozen=True)
class Delta:
    kind: str  # which container data is: "patch" (needs the old image) or "full" (the new image, compressed)
    profile: str
    data: bytes
    old_size: int
    new_size: int
    patch_size: int  # the best patch container found, also when the full image ships
    full_size: int  # the full-image container: the new image compressed with the profile's codec, plus header

    @property
    def ratio(self) -> float:
        """Patch size over full-image container size: the patch ships when this is below 1."""
        return self.patch_size / self.full_size


def _profile_codec(profile: str) -> int:
    try:
        return container.PROFILES[profile]
    except KeyError:
        raise RigError(f"unknown delta profile {profile!r}; use p1 (STM32L0) or p2 (STM32H7, ESP32)") from None


def _container(kind: int, codec: int, old: bytes, new: bytes, stream_size: int, payload: bytes) -> bytes:
    patch = kind == container.KIND_PATCH
    header = container.Header(kind, codec, codecs.PARAMS[codec], len(old) if patch else 0, len(new), stream_size,
                              len(payload), hashlib.sha256(old).digest() if patch else container.NO_SOURCE,
                              hashlib.sha256(new).digest(), zlib.crc32(payload))
    return header.pack() + payload


def _patch(old: bytes, new: bytes, codec: int, profile: str) -> bytes:
    """The smallest patch container over the profile's zero-run gaps."""
    compress = codecs.COMPRESS[codec]
    matches = ops.Matches(old, new)
    best = None
    for gap in GAPS[profile]:
        stream = ops.serialise(matches, gap)
        payload = compress(stream)
        if best is None or len(payload) < len(best[1]):
            best = (stream, payload)
    assert best is not None  # every profile has at least one gap
    stream, payload = best
    return _container(container.KIND_PATCH, codec, old, new, len(stream), payload)


def _full(new: bytes, codec: int) -> bytes:
    """The full-image container: no old image, the payload decodes to the new image itself."""
    return _container(container.KIND_FULL, codec, b"", new, len(new), codecs.COMPRESS[codec](new))


def make(old: bytes, new: bytes, profile: str = "p2") -> Delta:
    """The smaller on the wire of the best patch and the full-image container, verified by applying it."""
    codec = _profile_codec(profile)
    patch, full = _patch(old, new, codec, profile), _full(new, codec)
    # A tie ships the full image: it does not depend on what the device runs.
    kind, data = ("patch", patch) if len(patch) < len(full) else ("full", full)
    if apply(old, data) != new:  # apply() checks the SHA-256 too; this guards apply() itself
        raise RigError(f"internal error: the {kind} container does not rebuild the new image; report this pair")
    return Delta(kind, profile, data, len(old), len(new), len(patch), len(full))


def apply(old: bytes, patch: bytes) -> bytes:
    """The new image; RigError (one line) for a corrupt or truncated container or, for a patch, the
    wrong old image. A full-image container does not read `old`."""
    h = container.parse(patch)
    if h.kind == container.KIND_PATCH:
        check_source(h, old)
    stream = codecs.DECOMPRESS[h.codec](patch[container.HEADER_SIZE :], h.stream_size, h.codec_param)
    new = ops.run(old, stream, h.new_size) if h.kind == container.KIND_PATCH else stream
    if hashlib.sha256(new).digest() != h.new_sha256:
        raise RigError("patch result does not match its SHA-256; the patch is corrupt")
    return new


def check_source(h: container.Header, old: bytes) -> None:
    if len(old) != h.old_size or hashlib.sha256(old).digest() != h.old_sha256:
        raise RigError(f"wrong source image: the patch applies to a {h.old_size}-byte image with SHA-256 "
                       f"{h.old_sha256.hex()[:16]}..., got {len(old)} bytes with "
                       f"{hashlib.sha256(old).hexdigest()[:16]}...")


def info(patch: bytes) -> dict:
    """What the header says, after checking the header and payload CRCs."""
    h = container.parse(patch)
    full = h.kind == container.KIND_FULL
    return {
        "kind": h.kind_name,
        "format_version": h.version,
        "profile": h.profile,
        "codec": CODEC_NAMES[h.codec],
        "codec_param": h.codec_param,
        "old_size": None if full else h.old_size,
        "new_size": h.new_size,
        "stream_size": h.stream_size,
        "payload_size": h.payload_size,
        "size": container.HEADER_SIZE + h.payload_size,
        "old_sha256": None if full else h.old_sha256.hex(),
        "new_sha256": h.new_sha256.hex(),
    }
