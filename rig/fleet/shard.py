"""One process of the fleet simulator: a slice of the devices on one asyncio loop, and a small HTTP
control endpoint on loopback for the ground truth and for injecting faults.

    python -m rig.fleet.shard SPEC.json      (rig.fleet.control starts these; SPEC says which devices)

Control endpoint (JSON):
    GET  /truth                      every device's Truth
    POST /inject {"ids", "kind", "params"}   give those devices a fault (offline takes effect at once)
    POST /stop                       disconnect every device and exit
"""

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import aiohttp
from aiohttp import web

from rig.fleet.device import FAULTS, Device, Timing, Truth
from rig.fleet.mqtt import raise_open_files

# Connection storms are what real fleets do after an outage; the broker copes, but paho's TCP
# connect blocks the loop, so a process opens this many at a time.
CONNECTS_AT_ONCE = 64


async def serve(spec: dict) -> None:
    raise_open_files(4 * len(spec["devices"]) + 256)  # an MQTT socket and a download each, with room
    timing = Timing(**spec.get("timing", {}))
    broker = (spec["broker_host"], spec["broker_port"])
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True),
                                 timeout=aiohttp.ClientTimeout(total=None, sock_read=30))
    devices: dict[str, Device] = {}
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    for d in spec["devices"]:
        t = Truth(id=d["id"], variant=d["variant"], layout=d["layout"], running=d.get("version", "1.0.0"),
                  floor=d.get("floor", 0), features=list(d.get("features", [])))
        devices[t.id] = Device(t, broker, http, timing, gate)
    done = asyncio.Event()

    async def truth(_req):
        return web.json_response([asdict(dev.t) for dev in devices.values()])

    async def inject(req):
        body = await req.json()
        kind, params = body["kind"], body.get("params", {})
        if kind not in FAULTS:
            return web.json_response({"error": f"no fault {kind}"}, status=400)
        for i in body["ids"]:
            dev = devices.get(i)
            if dev is None:
                continue
            if kind == "offline":
                dev.go_offline(params.get("seconds", 10.0))
            elif kind == "swap":
                dev.swap(params["variant"])
            else:
                dev.t.faults[kind] = params
        return web.json_response({"ok": True})

    async def stop(_req):
        done.set()
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes([web.get("/truth", truth), web.post("/inject", inject), web.post("/stop", stop)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    for i in spec.get("offline_at_start", []):  # devices that are switched off when the fleet comes up
        if i in devices:
            devices[i].go_offline(spec.get("offline_seconds", 10.0))
    tasks = [asyncio.ensure_future(d.run()) for d in devices.values()]
    tasks += [asyncio.ensure_future(d.poll_twin()) for d in devices.values()]
    print(json.dumps({"port": port}), flush=True)
    await done.wait()
    for d in devices.values():
        d.stop()
    for task in tasks:
        task.cancel()
    await asyncio.sleep(0.1)
    await http.close()
    await runner.cleanup()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(serve(spec))


if __name__ == "__main__":
    main()
