"""Patch sizes on the corpus: our P1 and P2 beside the anchors, made in the same run; then what
`make` ships (patch or full image) beside what version 1 of the format shipped.

Anchors: bsdiff4's BSDIFF40 file; detools' sequential patches with lzma and with heatshrink
(window 8, lookahead 7) when detools is installed (tox -e bench installs it); xdelta3 -9 -S lzma when the
xdelta3 program is on PATH. Every patch, ours and the anchors', is applied and checked. Goals:
P1 <= detools heatshrink and P2 <= detools lzma on every pair; encode <= 1 s per 512 KiB (make()
as a whole: the patch and the full-image candidate).

The second table adds pairs where a patch pays little or nothing: rig's own firmware built with
-Os and with -O2 (a compiler-flag change; needs the Arm toolchain), another product's image, and
a first install from an empty slot. Version 1 shipped the raw new image whenever the patch
exceeded 60 % of the compressed image; version 2 ships the smaller container.
"""

import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import bsdiff4
from rich.console import Console
from rich.table import Table

from bench import corpus
from rig import delta
from rig.build import build
from rig.delta import container, native
from rig.errors import RigError

KIB = 1024


def _detools(old: bytes, new: bytes, compression: str) -> int | None:
    try:
        import detools
    except ImportError:
        return None
    patch = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), patch, compression=compression,
                         heatshrink_window_sz2=8, heatshrink_lookahead_sz2=7)
    rebuilt = io.BytesIO()
    detools.apply_patch(io.BytesIO(old), io.BytesIO(patch.getvalue()), rebuilt)
    assert rebuilt.getvalue() == new, f"detools {compression} patch does not rebuild the image"
    return len(patch.getvalue())


def _xdelta3(old: bytes, new: bytes) -> int | None:
    exe = shutil.which("xdelta3")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "old").write_bytes(old)
        (d / "new").write_bytes(new)
        subprocess.run([exe, "-e", "-9", "-S", "lzma", "-f", "-s", d / "old", d / "new", d / "patch"], check=True)
        subprocess.run([exe, "-d", "-f", "-s", d / "old", d / "patch", d / "out"], check=True)
        assert (d / "out").read_bytes() == new, "xdelta3 patch does not rebuild the image"
        return (d / "patch").stat().st_size


def _ours(old: bytes, new: bytes, profile: str) -> tuple[delta.Delta, float]:
    start = time.perf_counter()
    made = delta.make(old, new, profile)
    seconds = time.perf_counter() - start
    assert native.apply(old, made.data) == new, f"{profile}: the C applier does not rebuild the image"
    return made, seconds * (512 * KIB) / len(new)


def _kib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / KIB:.1f}"


def _anchors(console: Console) -> None:
    table = Table(title="delta patch sizes (KiB) and encode time", title_justify="left")
    for col in ("pair", "new", "bsdiff40", "detools lzma", "detools hs 8/7", "xdelta3 -9 lzma", "P1", "P2",
                "P1<=hs", "P2<=lzma", "encode s/512KiB P1, P2"):
        table.add_column(col, justify="left" if col == "pair" else "right")
    goals = []
    for name, _, _ in corpus.PAIRS:
        old, new = corpus.load(name)
        bsd = len(bsdiff4.diff(old, new))
        d_lzma, d_hs = _detools(old, new, "lzma"), _detools(old, new, "heatshrink")
        xd = _xdelta3(old, new)
        (m1, t1), (m2, t2) = _ours(old, new, "p1"), _ours(old, new, "p2")
        p1, p2 = m1.patch_size, m2.patch_size
        ok1 = None if d_hs is None else p1 <= d_hs
        ok2 = None if d_lzma is None else p2 <= d_lzma
        goals += [ok1, ok2, max(t1, t2) <= 1.0]
        table.add_row(name, _kib(len(new)), _kib(bsd), _kib(d_lzma), _kib(d_hs), _kib(xd), _kib(p1), _kib(p2),
                      {None: "n/a", True: "yes", False: "NO"}[ok1], {None: "n/a", True: "yes", False: "NO"}[ok2],
                      f"{t1:.2f}, {t2:.2f}")
    console.print(table)
    verdict = "n/a (detools missing)" if None in goals else ("all met" if all(goals) else "NOT all met")
    console.print(f"size and encode-time goals: {verdict}")


def _flag_pairs(console: Console) -> list[tuple[str, bytes, bytes]]:
    """rig's firmware built with -Os and with -O2, per STM32 variant; none without the toolchain."""
    pairs = []
    for variant in ("stm32l0", "stm32h7"):
        images = []
        for cflags in ((), ("-O2",)):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    result = build(Path(tmp), variants=(variant,), version="1.0.0", faults=("none",), cflags=cflags)
                except RigError as exc:
                    console.print(f"firmware -Os->-O2 pairs not measured: {exc}")
                    return []
                images.append((Path(tmp) / result.artifacts[0]["file"]).read_bytes())
        pairs.append((f"firmware/ {variant} -Os->-O2", *images))
    return pairs


def _v1_size(made: delta.Delta) -> int:
    """What version 1's make wrote: the raw new image when the patch exceeded 60 % of the compressed one."""
    return made.new_size if made.patch_size > 0.60 * (made.full_size - container.HEADER_SIZE) else made.patch_size


def _ships(console: Console) -> None:
    table = Table(title="what make ships (bytes): patch or full image, against version 1", title_justify="left")
    for col in ("pair", "new", "profile", "patch", "full image", "ships", "v1 shipped", "v2/v1"):
        table.add_column(col, justify="left" if col in ("pair", "profile", "ships") else "right")
    pairs = _flag_pairs(console)
    if corpus.missing() is None:
        pairs += [(name, *corpus.load(name)) for name, _, _ in corpus.PAIRS]
        blinky, pyb = corpus.load("blinky")[1], corpus.load("pybv11 1f5d945af->dirty")[0]
        pairs += [("another product: blinky -> pybv11", blinky, pyb), ("first install: empty -> pybv11", b"", pyb)]
    for name, old, new in pairs:
        for profile in ("p1", "p2"):
            made, _ = _ours(old, new, profile)
            v1 = _v1_size(made)
            table.add_row(name, str(len(new)), profile, str(made.patch_size), str(made.full_size),
                          f"{made.kind} {len(made.data)}", f"{'raw' if v1 == len(new) else 'patch'} {v1}",
                          f"{len(made.data) / v1:.2f}")
    console.print(table)


def main() -> None:
    console = Console(highlight=False, width=200)
    why_not = corpus.missing()
    if why_not:
        console.print(f"delta patch sizes against the anchors: {why_not}; not measured")
    else:
        _anchors(console)
    _ships(console)
