"""`rig fleet up|down|status|inject|flag`: the simulated fleet, its faults and its feature flags."""

import json
from collections import Counter
from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.errors import RigError
from rig.fleet.control import DEFAULT_MIX, Fleet, parse_mix
from rig.fleet.device import FAULTS
from rig.variants import NAMES

DEFAULT_FOLDER = Path(".rig/fleet")

HELP = """A simulated fleet of devices on MQTT, and the faults and flags you give it.

\b
`up` starts a private mosquitto on loopback (unless --broker mqtt://HOST:PORT), its message log
(messages.log in the fleet folder, written by mosquitto_sub), and N simulated devices, each with
a variant, firmware 1.0.0, an anti-rollback floor, a device twin and an update client that
downloads from rig's OTA server, installs, reboots and confirms after a health check or rolls
back. `rig rollout start` then updates them; `status` shows what they really run.

\b
  rig fleet up --devices 1000 --seed 7 --mix esp32=50,stm32h7=30,stm32l0=20
  rig fleet inject boot-fail --fraction 0.3 --variant stm32l0
  rig fleet inject offline --fraction 0.15 --seconds 60
  rig fleet flag set telemetry=on --wave 1
  rig fleet status
  rig fleet down
"""

fleet_option = click.option("--fleet", "folder", type=click.Path(file_okay=False, path_type=Path),
                            default=DEFAULT_FOLDER, show_default=True,
                            help="The fleet's folder (state, log, database).")


def db_option(f):
    return click.option("--db", default=None, metavar="URL",
                        help="Rollout database: a SQLAlchemy URL (postgresql+psycopg://USER@HOST/DB).  "
                             "[default: sqlite in the fleet folder]")(f)


def db_url(folder: Path, db: str | None) -> str:
    return db or f"sqlite:///{Path(folder).resolve() / 'rollouts.db'}"


@click.group(help=HELP)
def fleet():
    pass


@fleet.command()
@fleet_option
@click.option("--devices", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same fleet (variants, names).")
@click.option("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()), show_default=True,
              help="Weights of the variants.")
@click.option("--broker", default=None, metavar="mqtt://HOST:PORT", help="Use this broker instead of a private one.")
def up(folder, devices, seed, mix, broker):
    """Start the broker, the message log and the devices; returns once every device is online."""
    f = Fleet.up(folder, devices, seed, parse_mix(mix), broker=broker)
    counts = Counter(t["variant"] for t in f.truth().values())
    out.print(f"fleet up: {devices} devices ({', '.join(f'{v} {n}' for v, n in sorted(counts.items()))}) "
              f"on {f.broker}; message log {f.log}")


@fleet.command()
@fleet_option
def down(folder):
    """Stop the devices, the rollout engine of this fleet, the message log and a private broker."""
    from rig.rollout.service import stop_engine

    f = Fleet.find(folder)
    engine = stop_engine(folder)
    f.down()
    out.print(f"fleet down{' (and its rollout engine)' if engine else ''}; the log stays in {f.log}")


@fleet.command()
@fleet_option
@click.option("--json", "as_json", is_flag=True, help="Every device's ground truth as JSON.")
def status(folder, as_json):
    """What the devices really run: versions, confirmed or not, online, per variant (ground truth)."""
    truth = Fleet.find(folder).truth()
    if as_json:
        click.echo(json.dumps(list(truth.values()), indent=1))
        return
    table = Table(title=f"fleet in {folder}: {len(truth)} devices (ground truth)", title_justify="left")
    for col in ("variant", "version", "confirmed", "online", "devices"):
        table.add_column(col)
    rows = Counter((t["variant"], t["running"], t["confirmed"], t["online"]) for t in truth.values())
    for (variant, version, confirmed, online), n in sorted(rows.items()):
        table.add_row(variant, version, "yes" if confirmed else "no", "yes" if online else "no", str(n))
    out.print(table)


@fleet.command()
@fleet_option
@click.argument("kind", type=click.Choice(sorted(FAULTS)))
@click.option("--fraction", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--variant", type=click.Choice(NAMES), default=None, help="Only devices of this variant.")
@click.option("--cohort", default=None, metavar="canary|wave-N",
              help="Only devices of this cohort of the policy (seeded like the rollout's).")
@click.option("--policy", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The policy whose cohorts --cohort means.  [default: the default policy]")
@click.option("--seed", type=int, default=1, show_default=True, help="Which devices get the fault.")
@click.option("--seconds", type=float, default=30.0, show_default=True, help="offline: how long.")
@click.option("--rate", type=int, default=2048, show_default=True, help="slow: bytes per second.")
@click.option("--to-variant", type=click.Choice(NAMES), default=None, help="swap: the new board's variant.")
def inject(folder, kind, fraction, variant, cohort, policy, seed, seconds, rate, to_variant):
    """Give a seeded fraction of the devices a fault.

    \b
    Faults:
    """
    f = Fleet.find(folder)
    among = None
    if cohort is not None:
        among = cohort_members(f.truth(), cohort, policy)
    ids = f.select(fraction, seed, kind, variant, among)
    params = {"offline": {"seconds": seconds}, "slow": {"rate": rate}}.get(kind, {})
    if kind == "swap":
        if to_variant is None:
            raise RigError("swap: say which board replaces them with --to-variant")
        params = {"variant": to_variant}
    f.inject(kind, ids, **params)
    out.print(f"{kind}: {len(ids)} device(s): {', '.join(ids[:8])}{' ...' if len(ids) > 8 else ''}")


inject.help = (inject.help or "") + "\n".join(f"      {k:12} {v}" for k, v in FAULTS.items())


def cohort_members(truth: dict, cohort: str, policy_path) -> list[str]:
    """The devices of `canary` or `wave-N` under a policy, computed as the engine computes them."""
    from rig.rollout import cohorts
    from rig.rollout.release import load_policy

    pol = load_policy(policy_path)
    if cohort == "canary":
        wave = 0
    elif cohort.startswith("wave-") and cohort[5:].isdigit():
        wave = int(cohort[5:])
    else:
        raise RigError(f"--cohort {cohort!r}: canary or wave-N (N from 1)")
    if wave >= len(pol.waves):
        raise RigError(f"--cohort {cohort}: the policy has waves 0..{len(pol.waves) - 1}")
    members = []
    for v in NAMES:
        plan, _ = cohorts.plan([(i, False) for i, t in truth.items() if t["variant"] == v], pol.seed, list(pol.waves))
        members += [i for i, k in plan.items() if k == wave]
    return members


@fleet.group()
def flag():
    """Feature flags: desired properties of the device twins."""


@flag.command("set")
@fleet_option
@db_option
@click.argument("assignment", metavar="NAME=VALUE")
@click.option("--wave", type=int, default=None, help="Only devices of this wave of the latest rollout (0: canary).")
@click.option("--variant", type=click.Choice(NAMES), default=None, help="Only devices of this variant.")
def flag_set(folder, db, assignment, wave, variant):
    """Write NAME=VALUE into the desired twin of the chosen devices.

    Online devices get the patch at once; offline ones GET their whole twin when they reconnect.
    A device whose firmware does not know the flag reports it `unsupported`.

    \b
      rig fleet flag set telemetry=on --wave 1
      rig fleet flag set log_level=2 --variant stm32l0
    """
    from rig.rollout.service import ask, ensure_engine

    name, sep, value = assignment.partition("=")
    if not sep or not name:
        raise RigError(f"flag {assignment!r}: give NAME=VALUE")
    try:
        value = json.loads(value)
    except ValueError:
        pass  # a plain string
    ensure_engine(folder, db_url(folder, db))
    n = ask(db_url(folder, db), "flag", args={"name": name, "value": value, "wave": wave, "variant": variant})
    out.print(f"{name}={value!r} desired on {n} device(s)")
