"""make / apply / info: the Python side of delta patches (see the package docstring)."""

import hashlib
import zlib
from dataclasses import dataclass

from rig.delta import codecs, container, ops
from rig.errors import RigError

# A delta is only worth shipping when it is well under the compressed full image.
FULL_IMAGE_THRESHOLD = 0.60

# Zero-run cut lengths make() tries per profile (see rig.delta.ops); measured on the corpus:
# LZSS pays per zero byte, so it wants runs cut early; LZMA codes zeros almost for free and
# prefers few ops.
GAPS = {"p1": (128, 256, 512), "p2": (1024,)}

# The profile each part's applier is built with (firmware/lib, bench/bench_delta_applier.py).
PROFILE_FOR_VARIANT = {"stm32l0": "p1", "stm32h7": "p2", "esp32": "p2"}

CODEC_NAMES = {container.CODEC_P1: "LZSS (heatshrink format, window 2^8, lookahead 2^7)",
               container.CODEC_P2: "LZMA1 raw, 4 KiB dictionary"}


@dataclass(frozen=True)
class Delta:
    kind: str  # "patch": data is a patch; "full": the patch did not pay, data is the new image itself
    profile: str
    data: bytes
    old_size: int
    new_size: int
    patch_size: int  # the best patch found, also when the full image is shipped instead
    full_compressed_size: int  # the new image compressed with the profile's codec

    @property
    def ratio(self) -> float:
        """Patch size over compressed full image size; above FULL_IMAGE_THRESHOLD ships "full"."""
        return self.patch_size / max(self.full_compressed_size, 1)


def _profile_codec(profile: str) -> int:
    try:
        return container.PROFILES[profile]
    except KeyError:
        raise RigError(f"unknown delta profile {profile!r}; use p1 (STM32L0) or p2 (STM32H7, ESP32)") from None


def make(old: bytes, new: bytes, profile: str = "p2") -> Delta:
    """The smallest patch from old to new, verified by applying it; or the full image if it does not pay."""
    codec = _profile_codec(profile)
    compress = codecs.COMPRESS[codec]
    matches = ops.Matches(old, new)
    best = None
    for gap in GAPS[profile]:
        stream = ops.serialise(matches, gap)
        payload = compress(stream)
        if best is None or len(payload) < len(best[1]):
            best = (stream, payload)
    stream, payload = best
    header = container.Header(codec, codecs.PARAMS[codec], len(old), len(new), len(stream), len(payload),
                              hashlib.sha256(old).digest(), hashlib.sha256(new).digest(),
                              zlib.crc32(payload))
    patch = header.pack() + payload
    if apply(old, patch) != new:  # apply() checks the SHA-256 too; this guards apply() itself
        raise RigError("internal error: the patch does not rebuild the new image; report this pair")
    # The full image is sized with the codec's fast setting: it only places the 60 % line.
    full = len(codecs.compress_p2(new, tuned=False) if codec == container.CODEC_P2 else compress(new))
    if len(patch) > FULL_IMAGE_THRESHOLD * full:
        return Delta("full", profile, bytes(new), len(old), len(new), len(patch), full)
    return Delta("patch", profile, patch, len(old), len(new), len(patch), full)


def apply(old: bytes, patch: bytes) -> bytes:
    """The new image; RigError (one line) for a corrupt or truncated patch or the wrong old image."""
    h = container.parse(patch)
    check_source(h, old)
    stream = codecs.DECOMPRESS[h.codec](patch[container.HEADER_SIZE :], h.stream_size, h.codec_param)
    new = ops.run(old, stream, h.new_size)
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
    return {
        "format_version": container.VERSION,
        "profile": h.profile,
        "codec": CODEC_NAMES[h.codec],
        "codec_param": h.codec_param,
        "old_size": h.old_size,
        "new_size": h.new_size,
        "stream_size": h.stream_size,
        "payload_size": h.payload_size,
        "patch_size": container.HEADER_SIZE + h.payload_size,
        "old_sha256": h.old_sha256.hex(),
        "new_sha256": h.new_sha256.hex(),
    }
