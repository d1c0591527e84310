"""`rig sign`, `rig verify`, `rig image info`: the commands a release script runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.cli import main
from rig.image import esp_app, sbv2
from rig.image.keys import load_public_key, load_signer
from rig.image.layouts import LAYOUTS
from rig.image.sbv2 import key_digest
from rig.image.trailer import Flag, Magic, Trailer, swap_move_room

RIG = str(Path(sys.executable).parent / "rig")


@pytest.fixture
def rig(monkeypatch, capsys):
    """Run the rig entry point in-process (importing the CLI is most of a subprocess's cost)."""

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["rig", *map(str, args)])
        with pytest.raises(SystemExit) as e:
            main()
        captured = capsys.readouterr()
        return e.value.code or 0, captured.out, captured.err

    return run


@pytest.fixture
def app(tmp_path) -> Path:
    path = tmp_path / "app.bin"
    path.write_bytes(os.urandom(4000))
    return path


def test_sign_verify_info_stm32(tmp_path, keydir, imgtool, rig, app):
    out = tmp_path / "app.img"
    code, stdout, _ = rig("sign", "--key", keydir / "ec.pem", "--variant", "stm32h7", "--version", "1.2.0+3",
                          "--security-counter", 2, app, out)
    assert code == 0 and "1.2.0+3" in stdout
    assert imgtool("verify", "-k", keydir / "ec.pem", out).returncode == 0
    assert rig("verify", "--key", keydir / "ec.pub.pem", out)[0] == 0
    assert rig("verify", "--key", keydir / "rsa.pem", "--key", keydir / "ec.pem", "--min-security-counter", 2,
               "--variant", "stm32h7", out)[0] == 0
    code, stdout, err = rig("verify", "--key", keydir / "ec.pem", "--min-security-counter", 3, out)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and err.startswith(f"rig: error: {out}: security")
    code, _, err = rig("sign", "--key", keydir / "ec.pem", "--variant", "stm32h7", "--version", "1.2.1", out,
                       tmp_path / "twice.img")
    assert code == 2 and "already a signed MCUboot image" in err
    code, _, err = rig("verify", "--key", keydir / "ec.pem", "--variant", "esp32", out)
    assert code == 2 and "not MCUboot images" in err and err.count("\n") == 1
    code, stdout, _ = rig("image", "info", "--json", out)
    info = json.loads(stdout)
    assert code == 0 and info["version"] == "1.2.0+3" and info["security_counter"] == 2
    assert [t["name"] for t in info["tlvs"]] == ["SHA256", "KEYHASH", "ECDSASIG"]
    code, stdout, _ = rig("image", "info", out)
    assert code == 0 and "KEYHASH" in stdout and "security_counter" in stdout


def test_sign_pad_confirm_l0(tmp_path, keydir, imgtool, rig, app):
    out = tmp_path / "app.img"
    assert rig("sign", "--key", keydir / "rsa.pem", "--variant", "stm32l0", "--version", "2.0.0", "--pad",
               "--confirm", app, out)[0] == 0
    trailer = Trailer.for_layout(LAYOUTS["stm32l073-192k"], "slot1")
    data = out.read_bytes()
    state = trailer.read(data)
    assert len(data) == trailer.slot_size and (state.magic, state.image_ok) == (Magic.GOOD, Flag.SET)
    assert data[-trailer.size : trailer.magic_off].count(0) > trailer.size - 40  # erased 0x00, not 0xFF
    assert imgtool("verify", "-k", keydir / "rsa.pem", out).returncode == 0
    code, stdout, _ = rig("image", "info", "--json", "--variant", "stm32l0", out)
    assert json.loads(stdout)["trailer"] == {"magic": "good", "image_ok": "set", "copy_done": "unset",
                                            "swap_type": "none"}


def test_sign_esp32_secure_boot_v2(tmp_path, keydir, rig):
    app = tmp_path / "esp.bin"
    app.write_bytes(esp_app.app_image("1.4.0", secure_version=2))
    code, stdout, _ = rig("image", "info", "--json", app)
    assert code == 0 and json.loads(stdout)["secure_boot_v2"] == [] and json.loads(stdout)["secure_version"] == 2
    out = tmp_path / "esp-signed.bin"
    assert rig("sign", "--key", keydir / "rsa3072.pem", "--variant", "esp32", app, out)[0] == 0
    r = subprocess.run([str(Path(sys.executable).parent / "espsecure"), "verify-signature", "--version", "2",
                        "--keyfile", keydir / "rsa3072.pub.pem", out], capture_output=True, text=True)
    assert r.returncode == 0 and "(RSA)" in r.stdout, r.stdout + r.stderr
    assert rig("verify", "--key", keydir / "rsa3072.pem", "--min-security-counter", 2, out)[0] == 0
    code, _, err = rig("verify", "--key", keydir / "rsa3072.pem", "--min-security-counter", 3, out)
    assert code == 2 and "secure_version 2 is below the floor 3" in err
    code, _, err = rig("verify", "--key", keydir / "rsa3072b.pem", out)
    assert code == 2 and "not trusted" in err
    both = tmp_path / "esp-two-keys.bin"
    assert rig("sign", "--key", keydir / "rsa3072b.pem", "--variant", "esp32", "--append", out, both)[0] == 0
    assert rig("verify", "--key", keydir / "rsa3072b.pem", both)[0] == 0
    code, stdout, _ = rig("image", "info", "--json", out)
    info = json.loads(stdout)
    assert code == 0 and info["version"] == "1.4.0+0" and info["app_descriptor"]["variant"] == "esp32"
    assert info["secure_boot_v2"][0]["key_digest"] == key_digest(load_public_key(keydir / "rsa3072.pem")).hex()
    assert info["secure_boot_v2"][0]["kind"] == "rsa-3072"
    code, _, err = rig("sign", "--key", keydir / "rsa3072.pem", "--variant", "esp32", "--version", "1.0.0", app, out)
    assert code == 2 and "--version" in err


def test_esp32_refuses_ecdsa_secure_boot(tmp_path, keydir, rig):
    """The original ESP32 verifies RSA-3072 blocks only: no ECDSA block is made for it or passes for it."""
    app = tmp_path / "esp.bin"
    app.write_bytes(esp_app.app_image("1.4.0"))
    out = tmp_path / "esp-signed.bin"
    code, _, err = rig("sign", "--key", keydir / "ec.pem", "--variant", "esp32", app, out)
    assert code == 2 and "an EC P-256 key; the esp32" in err and "RSA-3072 signatures only" in err
    assert not out.exists() and err.count("\n") == 1
    out.write_bytes(sbv2.sign(app.read_bytes(), load_signer(keydir / "ec.pem")))  # as for a later chip
    code, _, err = rig("verify", "--key", keydir / "ec.pem", out)
    assert code == 2 and "no valid RSA-3072 signature block" in err and "(EC P-256 only)" in err
    code, _, err = rig("sign", "--key", keydir / "rsa3072.pem", "--variant", "stm32h7", "--version", "1.0.0", app,
                       tmp_path / "h7.img")
    assert code == 2 and "an RSA-3072 key; the stm32h7" in err


@pytest.mark.parametrize("key, args, message", [
    ("ec.pem", ["--variant", "stm32h7"], "--version is required"),
    ("ec.pem", ["--variant", "stm32h7", "--version", "1.0", ], "version '1.0'"),
    ("ec.pem", ["--variant", "stm32h7", "--version", "1.0.0", "--confirm"], "needs --pad"),
    ("rsa3072.pem", ["--variant", "esp32"], "not an ESP image"),
    ("ec.pem", ["--variant", "stm32l0", "--version", "1.0.0", "--append"], "--append adds Secure Boot V2 blocks"),
])
def test_sign_errors_are_one_line(tmp_path, keydir, rig, app, key, args, message):
    out = tmp_path / "out.img"
    code, stdout, err = rig("sign", "--key", keydir / key, *args, app, out)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # nothing half-written


def test_sign_refuses_an_image_too_big_for_the_slot(tmp_path, keydir, rig):
    big = tmp_path / "big.bin"
    # Fits the slot before its trailer, but not what swap-using-move can move.
    room = swap_move_room(LAYOUTS["stm32l073-192k"])
    big.write_bytes(bytes(room - 0x200 - 100))  # + ~150 bytes of TLVs
    code, _, err = rig("sign", "--key", keydir / "ec.pem", "--variant", "stm32l0", "--version", "1.0.0", big,
                       tmp_path / "out.img")
    assert code == 2 and f"moves at most {room} bytes" in err and not (tmp_path / "out.img").exists()
    big.write_bytes(bytes(room - 0x200 - 200))
    assert rig("sign", "--key", keydir / "ec.pem", "--variant", "stm32l0", "--version", "1.0.0", big,
               tmp_path / "out.img")[0] == 0
    code, _, err = rig("verify", "--key", keydir / "ec.pem", "--variant", "stm32l0", tmp_path / "out.img")
    assert code == 0


def test_key_errors_never_show_secrets(tmp_path, keydir, rig, app):
    uri = "pkcs11:token=rig;object=fw-key?module-path=/nonexistent/libsofthsm2.so&pin-value=s3cret"
    code, _, err = rig("sign", "--key", uri, "--variant", "stm32h7", "--version", "1.0.0", app, tmp_path / "o")
    assert code == 2 and "s3cret" not in err and "pin-value=***" in err
    code, _, err = rig("sign", "--key", keydir / "ec.pub.pem", "--variant", "stm32h7", "--version", "1.0.0", app,
                       tmp_path / "o")
    assert code == 2 and "no private key" in err


def test_the_installed_command(tmp_path, keydir, rig, app):
    """Once through the real `rig` executable (importing it is costly): exit 2 and one line, no traceback."""
    out = tmp_path / "app.img"
    assert rig("sign", "--key", keydir / "ec.pem", "--variant", "stm32l0", "--version", "1.0.0", app, out)[0] == 0
    assert rig("verify", "--key", keydir / "ec.pem", out)[0] == 0
    bad = bytearray(out.read_bytes())
    bad[0x300] ^= 0x10
    out.write_bytes(bad)
    r = subprocess.run([RIG, "verify", "--key", keydir / "ec.pem", out], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == f"rig: error: {out}: hash mismatch: the image was altered after signing\n"
