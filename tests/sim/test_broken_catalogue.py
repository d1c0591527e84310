"""The defect catalogue says truthfully where each defect lives, and `enable` gives a lab that
carries it: a firmware defect of the STM32s is a defect build of rig's C app (the virtual STM32s
execute it), every other defect a switch of the lab's models (chips, bootloaders, the ESP32's
modelled firmware). Whether the suite catches each is tests/hil/test_broken_models.py's part."""

from rig.build import defects as builds
from rig.sim import broken

# the components of the STM32 firmware: rig's C app and its MCUmgr SMP server (firmware/common)
STM32_FIRMWARE = {broken.APP, broken.SMP}


def components(defect: broken.Defect) -> set[str]:
    return set(defect.component.split(","))


def test_every_stm32_firmware_defect_is_a_defect_build_of_the_c_app():
    missing = [d.switch for d in broken.CATALOGUE if components(d) & STM32_FIRMWARE and d.switch not in builds.DEFECTS]
    assert not missing, f"no `rig build --defect` for {missing} (firmware/common/defects.h, rig/build/defects.py)"


def test_every_defect_build_is_a_firmware_defect_of_the_catalogue():
    for name in builds.DEFECTS:
        defect = broken.BY_SWITCH[name]
        assert defect.kind is broken.Kind.FIRMWARE and components(defect) & STM32_FIRMWARE, name


def test_enable_builds_the_firmware_defects_and_switches_the_models():
    for defect in broken.CATALOGUE:
        breakage = broken.enable(defect.switch)
        # img_mgmt is only the STM32s' C firmware: no model to switch
        assert breakage.env == ({} if components(defect) == {broken.SMP} else {broken.ENV: defect.switch})
        assert breakage.build == (defect.switch if defect.switch in builds.DEFECTS else None)
    assert broken.enable("no-revert").build is None  # MCUboot and the ESP-IDF bootloader are models
    assert broken.enable("no-cert-check").build is None  # the ESP32's OTA client is modelled
    assert broken.enable("smp-test-is-permanent") == broken.Breakage({}, "smp-test-is-permanent")
    # the app's defects are the STM32 build and a switch of the ESP32's modelled app
    assert broken.enable("confirm-not-persisted") == broken.Breakage({broken.ENV: "confirm-not-persisted"},
                                                                     "confirm-not-persisted")
