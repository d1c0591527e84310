"""rig's run history: every pytest session with the rig plugin, every `rig ota`/`rig demo` campaign
and every provisioning batch, with its results; board health and quarantine; flaky tests; the
static HTML report. `store.py` is the database, the rest reads or feeds it."""
