"""Deliberately broken builds of the reference firmware: `rig build --defect NAME`.

Each defect is a bug that shipped update code has had, compiled into the C app as one
RIG_DEFECT_* switch (firmware/common/defects.h), so the suite proves it catches a broken
*firmware*. A defect build is named rig-<variant>-<fault>.<defect>.bin beside the good ones, and
the manifest says which defect it carries.
"""

from rig.errors import RigError

DEFECTS: dict[str, str] = {
    "confirm-not-persisted": "prints `rig: confirmed` but never programs image_ok (a settings write never "
                             "committed): the next reset reverts the update",
    "resume-wrong-offset": "resumes an upload (the same sha again at off 0) one 512-byte upload buffer past "
                           "where it stopped, while its flash writer goes on where it stopped: every later "
                           "byte lands a buffer early and the image in slot 1 is broken",
    "smp-match-always": "skips the image hash checks: the last upload reply says match and state write "
                        "marks an image whose bytes do not hash to its SHA256 TLV",
    "smp-test-is-permanent": "image state write takes a test request for a named image as confirm=true: "
                             "MCUboot swaps the image in for good and never reverts it",
    "confirm-before-health": "confirms its image before the health check, whatever the verdict: a build "
                             "that fails its health check is kept",
    "watchdog-never-bites": "never starts the independent watchdog: a hung image hangs for ever instead "
                            "of being reset and rolled back",
    "interrupted-upload-blocks-slot": "takes what an interrupted upload left in slot 1 (an image header, no "
                                      "valid image) for a slot in use: after a power cut mid-upload every new "
                                      "upload is refused (NO_FREE_SLOT) instead of erasing and writing it over",
}


def check(defect: str | None) -> None:
    if defect is not None and defect not in DEFECTS:
        raise RigError(f"defect {defect!r} unknown; choose from {', '.join(DEFECTS)}")


def stem(variant: str, fault: str, defect: str | None) -> str:
    return f"rig-{variant}-{fault}" + (f".{defect}" if defect else "")


def defines(defect: str | None) -> dict[str, int]:
    check(defect)
    return {f"RIG_DEFECT_{defect.upper().replace('-', '_')}": 1} if defect else {}
