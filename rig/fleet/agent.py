"""The rack joins the fleet: rig's agent takes each board's jobs from MQTT on its behalf, delivers
them with the OTA campaign machinery (rig.ota: SMP on the STM32s, the board's own HTTP pull on the
ESP32) and reports only what read-back shows.

    python -m rig.fleet.agent SPEC.json     (rig.fleet.control starts one per board for `Fleet.up(rack=...)`)

Each board is a thing named `rack-<board id>` whose reported twin says kind "rack" (the engine
puts rack boards in every canary). Enrolment installs the baseline release (1.0.0, confirmed) with
the board's flasher; a job's artefact is downloaded from the service's OTA server (SHA-256 checked),
handed to the board byte for byte, and judged from read-back: SUCCEEDED only for `updated`
(the new image in the boot slot, nothing pending, its boot confirmed), FAILED with the verdict
otherwise. One process per board: labgrid's drivers (and its step log) belong to one thread, and
boards are updated side by side.
"""

import asyncio
import json
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from rig.atomic import write_bytes
from rig.fleet import protocol as p
from rig.fleet.device import Device, Timing, Truth
from rig.fleet.mqtt import raise_open_files
from rig.variants import Delivery, facts

PREFIX = "rack-"


class RackDevice(Device):
    KIND = "rack"

    def __init__(self, truth: Truth, broker, http, timing: Timing, gate, campaign, executor: ThreadPoolExecutor):
        super().__init__(truth, broker, http, timing, gate)
        self.campaign = campaign
        self.executor = executor

    async def _run_job(self, ex: dict) -> None:
        job, doc = ex["jobId"], ex.get("jobDocument", {})
        t = self.t
        try:
            art = doc.get("artefact", {})
            compatible = art.get("compatible", {})
            if t.variant not in compatible.get("variants", []) or t.layout not in compatible.get("layouts", []):
                await self._update(job, p.REJECTED, {"reason": "incompatible", "variant": t.variant})
                return
            if not await self._update(job, p.IN_PROGRESS, {"step": "downloading"}):
                return
            data = await self._download(job, art)
            via = "SMP" if facts(t.variant).delivery is Delivery.SMP_PUSH else "HTTP"
            await self._update(job, p.IN_PROGRESS, {"step": "delivering", "via": via})
            t.installs[job] = t.installs.get(job, 0) + 1
            verdict = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.campaign.update, data, doc["version"])
            t.outcomes[job] = verdict.observed
            details = {"verdict": verdict.observed, "readBack": verdict.read_back}
            if verdict.observed == "updated":
                t.running, t.confirmed = doc["version"], True
                self._report_twin()
                await self._update(job, p.SUCCEEDED, details | {"version": doc["version"], "confirmed": True})
            else:
                if verdict.rollbacks:
                    t.boot_failures += 1
                self._report_twin()
                await self._update(job, p.FAILED, details | {"reason": verdict.observed,
                                                             "rollbacks": verdict.rollbacks})
        finally:
            self._busy = False


def _enrol(rack: str, workdir: Path, board):
    """On the board's own thread: lease it, install the baseline; returns its campaign."""
    from rig.drivers.pool import BoardPool
    from rig.ota.kit import CampaignKit

    kit = CampaignKit(rack, workdir, https=False)  # the fleet's releases embed no campaign CA: plain HTTP
    kit.__enter__()
    pool = BoardPool(f"rig fleet agent {board.id}", lease_timeout=600)
    campaign = kit.campaign(pool.take(board))
    image, _ = campaign.enrol()
    write_bytes(workdir / f"baseline-{board.id}.bin", image)  # what read-back compares "old" against
    return campaign, (kit, pool)


async def serve(spec: dict) -> None:
    from rig.lab import load_rack

    raise_open_files(1024)
    rack, workdir = spec["rack"], Path(spec["workdir"])
    board = next(b for b in load_rack(rack).boards if b.id == spec["board"])
    timing = Timing(**spec.get("timing", {}))
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(1, thread_name_prefix=f"agent-{board.id}")
    campaign, (kit, pool) = await loop.run_in_executor(executor, _enrol, rack, workdir, board)
    http = aiohttp.ClientSession()
    truth = Truth(id=PREFIX + board.id, variant=board.variant, layout=board.flash_layout)
    device = RackDevice(truth, (spec["broker_host"], spec["broker_port"]), http, timing, asyncio.Semaphore(1),
                        campaign, executor)
    task = asyncio.ensure_future(device.run())
    print(json.dumps({"thing": truth.id}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    device.stop()
    task.cancel()
    await loop.run_in_executor(executor, pool.release)
    kit.__exit__(None, None, None)
    await http.close()


def main() -> None:
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
