"""The device protocol: topics and payloads, the one place both sides take them from.

Jobs follow AWS IoT Jobs (MQTT API), twins follow Azure IoT Hub device twins; docs/rollouts.md
describes every message. All payloads are compact JSON, all messages QoS 1.

    rig/things/{thing}/jobs/notify-next              service -> device  {"execution": {...}} or {}
    rig/things/{thing}/jobs/notify                   service -> device  the pending list changed (a job TIMED_OUT)
    rig/things/{thing}/jobs/start-next               device -> service  {"clientToken"}
    rig/things/{thing}/jobs/start-next/accepted      service -> device  {"execution": {...}} or {}
    rig/things/{thing}/jobs/{jobId}/update           device -> service  {"status", "statusDetails",
                                                                        "expectedVersion", "clientToken"}
    rig/things/{thing}/jobs/{jobId}/update/accepted  service -> device  {"clientToken", "executionState": {...}}
    rig/things/{thing}/jobs/{jobId}/update/rejected  service -> device  {"clientToken", "code", "message",
                                                                        "executionState"}
    rig/things/{thing}/twin/get                      device -> service  {"clientToken"}
    rig/things/{thing}/twin/res                      service -> device  {"clientToken", "desired": {..., "$version"}}
    rig/things/{thing}/twin/desired                  service -> device  a desired patch {..., "$version"}
    rig/things/{thing}/twin/reported                 device -> service  a reported patch
    rig/things/{thing}/presence                      device (and its will) -> service  {"online": bool}
"""

PREFIX = "rig/things"

# AWS IoT Jobs execution statuses
QUEUED, IN_PROGRESS, SUCCEEDED, FAILED = "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED"
REJECTED, TIMED_OUT, CANCELED, REMOVED = "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"
TERMINAL = (SUCCEEDED, FAILED, REJECTED, TIMED_OUT, CANCELED, REMOVED)
DEVICE_STATUSES = (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED)  # what a device may set

UNSUPPORTED = "unsupported"  # a reported flag the running firmware does not know


def thing_topic(thing: str, rest: str) -> str:
    return f"{PREFIX}/{thing}/{rest}"


def notify_next(thing: str) -> str:
    return thing_topic(thing, "jobs/notify-next")


def start_next(thing: str) -> str:
    return thing_topic(thing, "jobs/start-next")


def update(thing: str, job_id: str) -> str:
    return thing_topic(thing, f"jobs/{job_id}/update")


def twin(thing: str, what: str) -> str:
    return thing_topic(thing, f"twin/{what}")


def presence(thing: str) -> str:
    return thing_topic(thing, "presence")


def split(topic: str) -> tuple[str, str] | None:
    """(thing, the rest) of a device topic, else None."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    return parts[2], parts[3]


# Subscriptions of the service side: everything devices send.
SERVICE_TOPICS = (f"{PREFIX}/+/jobs/start-next", f"{PREFIX}/+/jobs/+/update", f"{PREFIX}/+/twin/get",
                  f"{PREFIX}/+/twin/reported", f"{PREFIX}/+/presence")


def device_topics(thing: str) -> str:
    """A device subscribes to its own subtree with no-local, so it hears only the service."""
    return f"{PREFIX}/{thing}/#"
