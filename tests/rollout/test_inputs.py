"""Bad input gets one clear line and leaves nothing behind: release and policy files, the fleet's
commands without a fleet, cohorts."""

import yaml

from rig.rollout import cohorts
from rig.rollout.kit import make_release


def test_an_image_listed_under_another_variant_is_refused(rig_cli, tmp_path):
    rel = make_release(tmp_path / "r", "2.0.0", code_size=1024)
    doc = yaml.safe_load(rel.read_text())
    doc["artefacts"]["stm32l0"]["file"] = doc["artefacts"]["stm32h7"]["file"]
    rel.write_text(yaml.safe_dump(doc))
    r = rig_cli("rollout", "start", rel, "--fleet", tmp_path / "fleet")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"rig: error: release {rel}: artefacts.stm32l0: app-stm32h7-2.0.0.bin is an image for stm32h7, not stm32l0"]
    assert not (tmp_path / "fleet").exists()


def test_policy_problems_are_listed_one_per_line(rig_cli, tmp_path):
    rel = make_release(tmp_path / "r", "2.0.0", code_size=1024)
    pol = tmp_path / "policy.yaml"
    pol.write_text(yaml.safe_dump({"waves": [50, 20], "gates": {"soak": 3, "stm32l0": {"error_threshold": "x"}},
                                   "speed": 1}))
    r = rig_cli("rollout", "start", rel, "--policy", pol, "--fleet", tmp_path / "fleet")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"rig: error: policy {pol}:") for line in lines)
    assert any("waves: rising percentages" in line for line in lines)
    assert any("gates.stm32l0.error_threshold: 'x' is not a number" in line for line in lines)


def test_fleet_commands_without_a_fleet_say_how_to_start_one(rig_cli, tmp_path):
    r = rig_cli("fleet", "status", "--fleet", tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"rig: error: no fleet is up in {tmp_path}; start one with `rig fleet up`"
    r = rig_cli("fleet", "up", "--mix", "esp32=50,esp8266=50", "--fleet", tmp_path)
    assert r.returncode == 2 and "'esp8266' is not a variant" in r.stderr


def test_a_larger_wave_only_adds_devices():
    """Acceptance 8 (cohorts): for any seed, raising a wave's percentage keeps its members."""
    things = [(f"dev-{i:05d}", False) for i in range(237)]
    for seed in range(20):
        small = cohorts.plan(things, seed, [5, 20, 100])
        large, _ = cohorts.plan(things, seed, [8, 20, 100])
        assert {t for t, k in small[0].items() if k == 0} < {t for t, k in large.items() if k == 0}
        assert sum(k == 0 for k in small[0].values()) == 12  # ceil(5 % of 237)
        assert cohorts.plan(things, seed, [5, 20, 100]) == small  # same seed, same cohorts
