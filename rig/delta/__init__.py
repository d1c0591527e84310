"""Delta updates: containers a small device applies while streaming, old slot in, new slot out.

bsdiff4 finds the matches; rig.delta.ops re-serialises them as one forward-only instruction
stream; a profile's codec compresses it (P1 LZSS for STM32L0, P2 LZMA1-4K for STM32H7/ESP32);
rig.delta.container frames it with sizes, SHA-256s and CRCs. When a patch does not beat it, the
container carries the new image itself, compressed with the same codec (kind "full"): the device
applies either with the same applier in the same RAM. Format: docs/delta-format.md.

Interface:

    make(old: bytes, new: bytes, profile: str = "p2") -> Delta
        Delta.data is always a container: kind "patch" (needs the old image) or "full" (the new
        image compressed, no old image), whichever is smaller; a tie ships "full". The container
        is applied and its result SHA-256 checked before make() returns it. Also .profile,
        .old_size, .new_size, .patch_size, .full_size (both candidates' sizes), .ratio.
    apply(old: bytes, patch: bytes) -> bytes
        The Python applier. Refuses (RigError, one line) a corrupt or truncated container and, for
        a patch, a wrong source image; a full image ignores old.
    info(patch: bytes) -> dict
        The header fields (kind, profile, sizes, SHA-256s), after the CRC checks.
    The profile each part's applier is built with is its rig.variants record's `delta_profile`.
    rig.delta.native.apply(old, patch) -> bytes
    rig.delta.native.apply_stream(patch, read_old, write_new, page_size, resume_at=0) -> None
        The device's own C applier (firmware/lib/) through ctypes: reads the old slot through
        read_old(offset, length), writes the new slot in page_size chunks through
        write_new(offset, data), and after a reset resumes at resume_at (a page boundary).
"""

from rig.delta.patch import Delta, apply, info, make

__all__ = ["Delta", "apply", "info", "make"]
