"""Compile and link the reference firmware for one STM32 variant and fault mode.

Reproducible by construction: sources in sorted order, every absolute path mapped away with
-ffile-prefix-map (the repository becomes `firmware/`, the scratch directory `gen/`), no build
id, SOURCE_DATE_EPOCH pinned and LC_ALL=C in the tool environment, no __DATE__/__TIME__ in the
sources. The same inputs therefore give the same ELF and binary, wherever the tree lives.
"""

from dataclasses import dataclass
from pathlib import Path

from rig.build import defects, layout_header, toolchain
from rig.chips import stm32 as chips
from rig.image import appdesc
from rig.image.mcuboot import Version
from rig.variants import facts

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

C_FLAGS = ["-std=c11", "-Os", "-g", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
           "-fdata-sections", "-fno-common"]
# firmware/lib's applier, built with the codec of the variant's delta profile (rig.variants).
CODEC_SOURCES = {"p1": "rd_lzss.c", "p2": "rd_lzma.c"}
CODEC_DEFINES = {"p1": "RDELTA_WITH_LZSS", "p2": "RDELTA_WITH_LZMA"}
LINK_FLAGS = ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
              "-Wl,--build-id=none"]


def cpu_flags(variant: str) -> list[str]:
    """The variant's core (rig.chips.stm32). On a core with an FPU the ABI is said: the firmware does
    no floating point, and the toolchain's configured default must not pick a hard-float newlib."""
    chip = chips.PARTS[variant]
    return [f"-mcpu={chip.core}", "-mthumb", *(["-mfloat-abi=soft"] if chip.fpu else [])]


@dataclass(frozen=True)
class Firmware:
    variant: str
    fault: str
    elf: Path
    bin: Path
    sizes: dict  # text/data/bss from arm-none-eabi-size


def sources(variant: str) -> list[Path]:
    lib = FIRMWARE / "lib"
    applier = [lib / "rdelta.c", lib / "rd_sha256.c", lib / CODEC_SOURCES[facts(variant).delta_profile]]
    return sorted([*FIRMWARE.joinpath("common").glob("*.c"), *FIRMWARE.joinpath(variant).glob("*.c"), *applier])


def build(variant: str, fault: str, version: Version, scratch: Path, env: dict[str, str],
          cflags: tuple[str, ...] = (), defect: str | None = None) -> Firmware:
    """Compile rig-<variant>-<fault>.elf and .bin (with a defect: rig-<variant>-<fault>.<defect>.*) in a
    directory of their own under scratch.

    cflags come after rig's own, so `-O2` there overrides the default `-Os`."""
    gen = scratch / defects.stem(variant, fault, defect)
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "rig_layout.h").write_text(layout_header.header(variant))
    (gen / "layout.ld").write_text(layout_header.linker_memory(variant))
    stem = gen / defects.stem(variant, fault, defect)
    defines = {
        "RIG_FAULT": appdesc.FAULTS.index(fault),
        "RIG_VERSION_MAJOR": version.major,
        "RIG_VERSION_MINOR": version.minor,
        "RIG_VERSION_REVISION": version.revision,
        "RIG_VERSION_BUILD": f"{version.build}u",
        CODEC_DEFINES[facts(variant).delta_profile]: 1,
        **defects.defines(defect),
    }
    args = [
        toolchain.tool("gcc"), *cpu_flags(variant), *C_FLAGS, *cflags,
        f"-ffile-prefix-map={FIRMWARE}=firmware", f"-ffile-prefix-map={gen}=gen",
        *(f"-D{k}={v}" for k, v in defines.items()),
        f"-I{FIRMWARE / 'common'}", f"-I{FIRMWARE / variant}", f"-I{FIRMWARE / 'lib'}", f"-I{gen}",
        *(str(s) for s in sources(variant)),
        f"-L{gen}", f"-L{FIRMWARE / 'common'}", f"-T{FIRMWARE / variant / 'link.ld'}", *LINK_FLAGS,
        "-o", f"{stem}.elf",
    ]
    toolchain.run(args, FIRMWARE, env)
    toolchain.run([toolchain.tool("objcopy"), "-O", "binary", f"{stem}.elf", f"{stem}.bin"], FIRMWARE, env)
    return Firmware(variant, fault, Path(f"{stem}.elf"), Path(f"{stem}.bin"),
                    toolchain.size(Path(f"{stem}.elf"), FIRMWARE, env))
