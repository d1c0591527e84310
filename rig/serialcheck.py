"""Refuse to run with upstream pyserial's serial.rfc2217 in place of pyserial-labgrid's.

Both distributions install the same `serial` package; whichever is installed last wins. esptool
and pyocd depend on upstream pyserial, so `pip install esptool pyocd` after labgrid silently
replaces the fork, and labgrid's RFC2217 fixes (no repeated subnegotiations, a validated timeout
property) disappear. The fork is recognised by the timeout property its rfc2217.Serial defines.
"""

from rig.errors import RigError

FIX = "pip install --force-reinstall --no-deps pyserial-labgrid==3.5.0.2"


def check_rfc2217():
    import serial.rfc2217

    if "timeout" not in vars(serial.rfc2217.Serial):
        raise RigError(
            f"serial.rfc2217 at {serial.rfc2217.__file__} is upstream pyserial's, not "
            f"pyserial-labgrid's (installed after labgrid?); fix: {FIX}"
        )


if __name__ == "__main__":
    # `python -m rig.serialcheck`: run by tox and .ci after installing, so a clobbered fork stops CI.
    import sys

    try:
        check_rfc2217()
    except RigError as exc:
        print(f"rig: error: {exc}", file=sys.stderr)
        sys.exit(1)
    print("serial.rfc2217: pyserial-labgrid's fork is in place")
