"""Compressed times and policies for the rollout tests: a fleet of hundreds decides in seconds."""

import time

import yaml

from rig.fleet.device import Timing

# twin_poll_s: devices GET their whole twin this often; only the flags test needs it short
FAST = Timing(install_s=0.03, boot_s=0.03, health_s=0.05, retry_s=0.5, progress_s=0.5, twin_poll_s=30.0,
              crash_every_s=0.05, crashes=4)


def policy_file(tmp_path, pol: dict):
    """The policy as a file: what `rig fleet inject --cohort` and the engine both read."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(pol))
    return path


def pol(**kw) -> dict:
    gates = {"min_judged": 5, "soak_s": 0.3, "error_threshold": 0.1, "progress_timeout_s": 2.0,
             "pickup_deadline_s": 3.0, "wave_deadline_s": 20.0} | kw.pop("gates", {})
    return {"seed": 5, "waves": [10, 50, 100], "poll_s": 0.1, "rate": {"per_minute": 0}} | kw | {"gates": gates}


def settle(lab, done, timeout=30.0, quiet=0.7):
    """Wait until `done(truth)` and then `quiet` seconds more, so a wrong decision would show."""
    lab.wait(done, timeout, "the rollout to settle")
    time.sleep(quiet)


