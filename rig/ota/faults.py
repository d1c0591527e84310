"""Faults the OTA server injects into what it serves, as a broken network or backend would.

A fault plan is a list of faults; each applies to the nth request of a device (`request`, 1-based)
or to every request (`request=None`), so "drop the first download at 40 %, then let the device
resume" is `[Fault("drop", at_percent=40, request=1)]`.
"""

from dataclasses import dataclass

from rig.errors import RigError

KINDS = ("drop", "stall", "corrupt", "truncate", "wrong-file")


@dataclass(frozen=True)
class Fault:
    kind: str
    at_byte: int | None = None  # offset into the file where the fault starts
    at_percent: float | None = None  # the same, as a share of the file
    length: int = 1  # corrupt: how many bytes
    seconds: float = 0.0  # stall: how long
    other_file: str | None = None  # wrong-file: what to serve instead
    request: int | None = None  # which request of the device (1-based); None = all

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RigError(f"unknown fault {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind != "wrong-file" and (self.at_byte is None) == (self.at_percent is None):
            raise RigError(f"fault {self.kind}: give exactly one of at_byte or at_percent")
        if self.kind == "wrong-file" and not self.other_file:
            raise RigError("fault wrong-file: name the file to serve instead (other_file)")

    def offset(self, size: int) -> int:
        """Where in a file of `size` bytes the fault starts."""
        if self.at_byte is not None:
            return self.at_byte
        assert self.at_percent is not None  # __post_init__ requires one of the two
        return int(size * self.at_percent / 100)

    def applies(self, request_no: int) -> bool:
        return self.request is None or self.request == request_no


def parse(spec: str) -> Fault:
    """Command-line form: `drop@40%`, `drop@12000`, `stall@50%:3`, `corrupt@1000:16`,
    `truncate@90%`, `wrong-file=other.bin`; a `#N` suffix limits it to request N."""
    body, _, req = spec.partition("#")
    request = int(req) if req.isdigit() else None
    if req and request is None:
        raise RigError(f"fault {spec!r}: the request after '#' must be a whole number")
    if body.startswith("wrong-file="):
        return Fault("wrong-file", other_file=body.split("=", 1)[1], request=request)
    kind, _, where = body.partition("@")
    pos, _, arg = where.partition(":")
    try:
        at: dict[str, float | int] = {"at_percent": float(pos[:-1])} if pos.endswith("%") else {"at_byte": int(pos)}
        extra: dict[str, float | int] = {}
        if kind == "stall":
            extra["seconds"] = float(arg or 1)
        elif kind == "corrupt":
            extra["length"] = int(arg or 1)
    except ValueError:
        raise RigError(f"fault {spec!r}: expected KIND@BYTE or KIND@PERCENT% (e.g. drop@40%)") from None
    return Fault(kind, request=request, **at, **extra)  # type: ignore[arg-type]  # each key has its type
