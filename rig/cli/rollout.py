"""`rig rollout start|status|list|pause|resume|abort|rollback|demo`: staged rollouts to a fleet."""

import datetime
import json
from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.fleet import db_option, db_url, fleet_option
from rig.errors import RigError

HELP = """Staged rollouts: a canary, then waves, per variant track, with health gates.

\b
A rollout sends a release (one artefact per variant) to the fleet as AWS-IoT-Jobs-shaped jobs
over MQTT. Each variant is its own track: its canary (a percentage rounded up, at least one
device, plus every rack board enrolled) must pass its gates before its next wave is queued.
Success counts only on a confirmed boot of the new version that survives the soak time; a
failure ratio above the threshold halts the track. State lives in a database; the engine runs
in the background (started by `start`), and a killed engine resumes where it was.

\b
  rig rollout start release.yaml --policy policy.yaml
  rig rollout status                 # every rollout, per variant and wave; --json for tools
  rig rollout pause 1                # nothing new is delivered; devices in flight finish
  rig rollout resume 1
  rig rollout abort 1                # queued jobs canceled; what in-flight devices did is reported
  rig rollout rollback 1             # the release's `rollback:` (or --to) to those that installed it
  rig rollout demo --devices 1000    # the whole story on a private broker and the virtual rack

docs/rollouts.md has the file formats, the protocol, the gates and the policy keys.
"""


@click.group(help=HELP)
def rollout():
    pass


@rollout.command()
@click.argument("release", type=click.Path(dir_okay=False))
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help="Waves, gates, rate limit (YAML).")
@fleet_option
@db_option
def start(release, policy, folder, db):
    """Start rolling RELEASE.yaml out to the fleet in FOLDER; prints the rollout's id."""
    from rig.rollout.release import load_policy, load_release
    from rig.rollout.service import ask, ensure_engine

    rel, pol = load_release(release), load_policy(policy)
    db = db_url(folder, db)
    ensure_engine(folder, db)
    rid = ask(db, "start", args={"release": rel.to_dict(), "policy": pol.to_dict()})
    out.print(f"rollout {rid}: {rel.version} to the fleet in {folder}, waves {list(pol.waves)} %; "
              f"`rig rollout status {rid}` follows it")


def _control(action: str):
    @rollout.command(action, help={
        "pause": "Deliver nothing new; devices in flight finish.",
        "resume": "Go on delivering after a pause.",
        "abort": "Cancel every queued job; report what happens to the devices in flight.",
    }[action])
    @click.argument("rollout_id", type=int)
    @fleet_option
    @db_option
    def command(rollout_id, folder, db):
        from rig.rollout.service import ask

        out.print(f"rollout {rollout_id}: {ask(db_url(folder, db), action, rollout_id)}")

    return command


pause, resume, abort = (_control(a) for a in ("pause", "resume", "abort"))


@rollout.command()
@click.argument("rollout_id", type=int)
@click.option("--to", "to", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The release to go back to.  [default: the release file's rollback:]")
@fleet_option
@db_option
def rollback(rollout_id, to, folder, db):
    """Abort ROLLOUT_ID and send the previous release to every device that installed it.

    Devices whose anti-rollback floor is above the previous release's are reported `stuck`, never
    flashed.
    """
    from rig.rollout.service import ask

    to = str(Path(to).resolve()) if to else None
    rid = ask(db_url(folder, db), "rollback", rollout_id, {"to": to})
    out.print(f"rollback {rid} of rollout {rollout_id} started; `rig rollout status {rid}`")


@rollout.command("list")
@fleet_option
@db_option
def list_(folder, db):
    """Every rollout: id, kind, version, state, started."""
    from rig.rollout.store import open_db, summary

    table = Table(title="rollouts", title_justify="left")
    for col in ("id", "kind", "version", "state", "started", "tracks"):
        table.add_column(col)
    for r in summary(open_db(db_url(folder, db))):
        tracks = ", ".join(f"{t['variant']} {t['state']} at wave {t['wave']}" for t in r["tracks"])
        table.add_row(str(r["id"]), r["kind"] + (f" of {r['parent']}" if r["parent"] else ""), r["version"],
                      r["state"], _when(r["created_at"]), tracks)
    out.print(table)


@rollout.command()
@click.argument("rollout_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: tracks, counts per wave, events.")
@fleet_option
@db_option
def status(rollout_id, as_json, folder, db):
    """Progress per variant and wave, and the event log (the engine's view)."""
    from rig.rollout.store import open_db, summary

    rows = summary(open_db(db_url(folder, db)), rollout_id)
    if rollout_id is not None and not rows:
        raise RigError(f"no rollout {rollout_id}; `rig rollout list` shows them")
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
        return
    for r in rows:
        table = Table(title=f"rollout {r['id']} ({r['kind']}) of {r['version']}: {r['state']}", title_justify="left")
        statuses = sorted({s for c in r["counts"].values() for s in c})
        for col in ("variant", "wave", *statuses):
            table.add_column(col)
        for key in sorted(r["counts"], key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
            variant, wave = key.split("/")
            table.add_row(variant, "canary" if wave == "0" else wave,
                          *(str(r["counts"][key].get(s, "")) for s in statuses))
        out.print(table)
        for e in r["events"]:
            out.print(f"  {_when(e['at'])} {e['kind']:10} {e['message']}")


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S")


@rollout.command()
@click.option("--devices", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--rack", default="targets/virtual-rack.yaml", show_default=True, metavar="FILE",
              help="A virtual rack whose boards join as canaries (its lab is started); '' for none.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".rig/rollout-demo"),
              show_default=True)
def demo(devices, seed, rack, workdir):
    """The story end to end on a private broker: a release whose STM32L0 image fails to boot halts
    at the canary and is rolled back; a good release then reaches the whole fleet. Exit 0 only
    when both outcomes are as expected."""
    from rig.rollout.demo import run

    raise SystemExit(0 if run(workdir, devices, seed, rack or None) else 1)
