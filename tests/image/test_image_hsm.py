"""Signing with a key held in SoftHSM2 over PKCS#11: the key never leaves the token."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.errors import RigError
from rig.image.keys import Pkcs11Uri, redact

MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian softhsm2 (.ci/setup installs it)
TOOL = str(Path(__file__).with_name("hsm_tool.py"))
RIG = str(Path(sys.executable).parent / "rig")


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "RIG_PKCS11_PIN": "1234"}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "rig", "--pin", "1234", "--so-pin", "5678"],
                   env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, TOOL, MODULE, "genkeys"], env=env, check=True)
    return env


def uri(label: str) -> str:
    return f"pkcs11:token=rig;object={label}?module-path={MODULE}&pin-source=env:RIG_PKCS11_PIN"


def tool(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, MODULE, *map(str, args)], env=env, capture_output=True, text=True)


def export_public(env, label: str, path: Path) -> None:
    """The public half comes off the token (rig.image.keys.load_public_key), as PEM for imgtool."""
    r = tool(env, "public", uri(label))
    assert r.returncode == 0, r.stderr
    path.write_text(r.stdout)


def test_token_key_is_not_extractable(token):
    r = tool(token, "attrs", "fw-key")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"extractable": False, "sensitive": True, "never_extractable": True}


def test_rig_sign_with_token_key_passes_imgtool(tmp_path, token, imgtool):
    """`rig sign --key pkcs11:...` (ECDSA-P256 on the token), then imgtool verify with the public key."""
    (tmp_path / "app.bin").write_bytes(os.urandom(3000))
    r = subprocess.run([RIG, "sign", "--key", uri("fw-key"), "--variant", "stm32h7", "--version", "1.0.0",
                        tmp_path / "app.bin", tmp_path / "app.img"], env=token, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "1234" not in r.stdout + r.stderr
    export_public(token, "fw-key", tmp_path / "pub.pem")
    r = imgtool("verify", "-k", tmp_path / "pub.pem", tmp_path / "app.img")
    assert r.returncode == 0 and "correctly validated" in r.stdout, r.stdout + r.stderr


def test_rsa_token_key_signs_pss(tmp_path, token, imgtool):
    (tmp_path / "app.bin").write_bytes(os.urandom(1000))
    r = tool(token, "sign", uri("fw-rsa"), tmp_path / "app.bin", tmp_path / "app.img")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Pkcs11Signer(rsa-2048, {uri('fw-rsa')})"  # repr: kind and source, no PIN
    export_public(token, "fw-rsa", tmp_path / "pub.pem")
    assert imgtool("verify", "-k", tmp_path / "pub.pem", tmp_path / "app.img").returncode == 0


def test_rig_sign_esp32_with_rsa_3072_token_key_passes_espsecure(tmp_path, token):
    """ESP32 Secure Boot V2 with the key on the token: espsecure verifies the RSA-PSS block and
    computes the eFuse digest rig reports."""
    from rig.image import esp_app
    from rig.image.keys import load_public_key
    from rig.image.sbv2 import key_digest

    (tmp_path / "app.bin").write_bytes(esp_app.app_image("1.0.0"))
    r = subprocess.run([RIG, "sign", "--key", uri("fw-sb"), "--variant", "esp32", tmp_path / "app.bin",
                        tmp_path / "app.signed"], env=token, capture_output=True, text=True)
    assert r.returncode == 0 and "rsa-3072 key digest" in r.stdout, r.stderr
    assert "1234" not in r.stdout + r.stderr
    export_public(token, "fw-sb", tmp_path / "pub.pem")
    espsecure = str(Path(sys.executable).parent / "espsecure")
    r = subprocess.run([espsecure, "verify-signature", "--version", "2", "--keyfile", tmp_path / "pub.pem",
                        tmp_path / "app.signed"], capture_output=True, text=True)
    assert r.returncode == 0 and "verification successful" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([espsecure, "digest-sbv2-public-key", "--keyfile", tmp_path / "pub.pem", "--output",
                        tmp_path / "digest.bin"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "digest.bin").read_bytes() == key_digest(load_public_key(tmp_path / "pub.pem"))


def test_extractable_key_wrong_pin_and_missing_key_are_refused(tmp_path, token):
    (tmp_path / "app.bin").write_bytes(b"x" * 100)
    r = tool(token, "sign", uri("fw-weak"), tmp_path / "app.bin", tmp_path / "o")
    assert r.returncode == 2 and "extractable" in r.stderr
    r = tool({**token, "RIG_PKCS11_PIN": "9999"}, "sign", uri("fw-key"), tmp_path / "app.bin", tmp_path / "o")
    assert r.returncode == 2 and "rejected the PIN" in r.stderr and "9999" not in r.stderr
    r = tool(token, "sign", uri("nope"), tmp_path / "app.bin", tmp_path / "o")
    assert r.returncode == 2 and "holds no private key" in r.stderr
    assert not (tmp_path / "o").exists()


def test_uri_parsing_and_redaction(monkeypatch, tmp_path):
    u = Pkcs11Uri.parse("pkcs11:token=my%20token;id=%01%ff?module-path=/x.so&pin-source=file:" + str(tmp_path / "pin"))
    assert (u.token, u.id, u.object, u.module_path) == ("my token", b"\x01\xff", None, "/x.so")
    (tmp_path / "pin").write_text("4321\n")
    assert u.pin() == "4321"
    assert redact("pkcs11:token=a;object=b?pin-value=1234&module-path=/x.so") == \
        "pkcs11:token=a;object=b?pin-value=***&module-path=/x.so"
    for bad, msg in [("pkcs11:object=k?module-path=/x.so&pin-value=1", "no token"),
                     ("pkcs11:token=t?module-path=/x.so&pin-value=1", "names no key"),
                     ("pkcs11:token=t;object=k?pin-value=1", "module-path"),
                     ("pkcs11:token=t;object=k?module-path=/x.so", "no PIN")]:
        with pytest.raises(RigError, match=msg) as e:
            Pkcs11Uri.parse(bad)
        assert "\n" not in str(e.value)
    monkeypatch.delenv("NO_SUCH_PIN_VAR", raising=False)
    with pytest.raises(RigError, match="NO_SUCH_PIN_VAR is not set"):
        Pkcs11Uri.parse("pkcs11:token=t;object=k?module-path=/x.so&pin-source=env:NO_SUCH_PIN_VAR").pin()
