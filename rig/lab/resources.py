"""rig's own labgrid resources, for what labgrid has no word for.

A targets file names this module under `imports:` so that labgrid's Environment, its pytest plugin
and its client tools can all read rig's boards.
"""

import attr
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

_str = attr.validators.instance_of(str)

# What rig drives, by labgrid resource class: the inventory accepts exactly these for a board's
# console and power, and rig.drivers binds the driver named here. One list, so a rack never lists
# an outlet that no rig command can switch.
SERIAL_PORTS = ("NetworkSerialPort", "RawSerialPort", "USBSerialPort")  # all bound by RigConsoleDriver
POWER_PORTS = {  # resource -> the labgrid power driver that switches it
    "NetworkPowerPort": "NetworkPowerDriver",
    "PDUDaemonPort": "PDUDaemonDriver",
    "YKUSHPowerPort": "YKUSHPowerDriver",
    "USBPowerPort": "USBPowerDriver",
}
# labgrid resources that switch power (outlets, relays, Modbus coils) for which rig binds no power
# driver: a board that names one is refused with a line saying what rig can switch.
OTHER_OUTLETS = ("ModbusTCPCoil", "WaveshareModbusTCPCoil", "TasmotaPowerPort", "SiSPMPowerPort",
                 "NetworkSiSPMPowerPort", "LAAPowerPort", "NetworkUSBPowerPort", "NetworkYKUSHPowerPort",
                 "DeditecRelais8", "NetworkDeditecRelais8", "HIDRelay", "NetworkHIDRelay", "Eth008DigitalOutput",
                 "HttpDigitalOutput")


@target_factory.reg_resource
@attr.s(eq=False)
class RigBoard(Resource):
    """What kind of board a target is.

    Args:
        variant (str): a name in rig.variants.VARIANTS (esp32, stm32h7, stm32l0)
        flash_layout (str): a layout name from rig.image.layouts; defaults to the variant's
        tags (list): free-form labels for selecting boards (`rig boards --tag`, pytest markers)
        virtual (bool): served by `rig lab up` rather than wired to real silicon
    """

    variant = attr.ib(validator=_str)
    flash_layout = attr.ib(default=None, validator=attr.validators.optional(_str))
    tags = attr.ib(factory=list, validator=attr.validators.instance_of(list))
    virtual = attr.ib(default=False, validator=attr.validators.instance_of(bool))


@target_factory.reg_resource
@attr.s(eq=False)
class RigDebugProbe(Resource):
    """An SWD debug probe driven by pyocd (an ST-LINK, a CMSIS-DAP probe, or a virtual one).

    Args:
        unique_id (str): the probe's serial number, as `pyocd list` prints it
        target_type (str): the pyocd target type of the part behind the probe
    """

    unique_id = attr.ib(validator=_str)
    target_type = attr.ib(validator=_str)
