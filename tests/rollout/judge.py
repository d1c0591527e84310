"""Verdicts from the broker's message log (mosquitto_sub's file), never from the engine's report."""

from collections import Counter

from rig.fleet import protocol as p


def offers(log, job_prefix: str = "") -> list[tuple[float, str, dict]]:
    """(time, thing, execution) for every job the service announced or handed to a device."""
    out = []
    for m in log:
        parts = p.split(m.topic)
        if parts is None or parts[1] not in ("jobs/notify-next", "jobs/start-next/accepted") or not m.payload:
            continue
        ex = m.payload.get("execution")
        if ex and ex["jobId"].startswith(job_prefix):
            out.append((m.at, parts[0], ex))
    return out


def first_offer(log, job_prefix: str = "") -> dict[str, float]:
    """thing -> when a job (of this prefix) was first announced to it (the log's time)."""
    out: dict[str, float] = {}
    for at, thing, _ in offers(log, job_prefix):
        out.setdefault(thing, at)
    return out


def notified_at(log, job_prefix: str = "") -> dict[str, float]:
    """thing -> when the service sent its first notification of a job (the message's timestamp)."""
    out: dict[str, float] = {}
    for m in log:
        parts = p.split(m.topic)
        if parts and parts[1] == "jobs/notify-next" and m.payload and m.payload.get("execution", {}).get(
                "jobId", "").startswith(job_prefix):
            out.setdefault(parts[0], m.payload["timestamp"])
    return out


def updates(log, job_prefix: str = "") -> list[tuple[float, str, str, dict]]:
    """(time, thing, jobId, body) of every job update a device sent."""
    out = []
    for m in log:
        parts = p.split(m.topic)
        if parts is None or not parts[1].startswith("jobs/") or not parts[1].endswith("/update") or not m.payload:
            continue
        job = parts[1][len("jobs/"):-len("/update")]
        if job.startswith(job_prefix):
            out.append((m.at, parts[0], job, m.payload))
    return out


def takes(log, job_prefix: str = "") -> Counter:
    """(thing, jobId) -> how many times the device began the job (its first IN_PROGRESS, sent once
    per clientToken; retries of one report share the token)."""
    seen = {(thing, job, body["clientToken"]) for _, thing, job, body in updates(log, job_prefix)
            if body.get("status") == p.IN_PROGRESS and body.get("statusDetails", {}).get("step") == "downloading"
            and "received" not in body["statusDetails"]}  # later reports of the same download carry its progress
    return Counter((thing, job) for thing, job, _ in seen)


def reported_hardware(log) -> dict[str, list[tuple[float, str, str]]]:
    """thing -> [(time, variant, layout)] as its reported twin said, in order."""
    out: dict[str, list] = {}
    for m in log:
        parts = p.split(m.topic)
        if parts and parts[1] == "twin/reported" and m.payload and "device" in m.payload:
            d = m.payload["device"]
            out.setdefault(parts[0], []).append((m.at, d["variant"], d["layout"]))
    return out


def mismatched_offers(log) -> list[str]:
    """Offers of an artefact the device's hardware (its latest report before the offer) cannot take."""
    hw = reported_hardware(log)
    bad = []
    for at, thing, ex in offers(log):
        before = [h for h in hw.get(thing, []) if h[0] <= at]
        if not before:
            bad.append(f"{thing}: offered {ex['jobId']} before it ever reported its hardware")
            continue
        _, variant, layout = before[-1]
        compat = ex["jobDocument"]["artefact"]["compatible"]
        if variant not in compat["variants"] or layout not in compat["layouts"]:
            bad.append(f"{thing} ({variant}/{layout}) offered {ex['jobId']} for {compat}")
    return bad


def max_in_window(times: list[float], width: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
