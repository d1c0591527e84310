"""Exported racks become labgrid places tagged with rig's facts, seen alike by labgrid and rig."""

import re

from tests.multihost.conftest import PLACES, RACKS


def places_by_tags(mh) -> dict[str, dict[str, str]]:
    """`labgrid-client -v places`, parsed: place name -> tags."""
    result = mh.client("-v", "places")
    assert result.returncode == 0, result.stderr
    found = {}
    for block in result.stdout.split("Place '")[1:]:
        name = block.split("'", 1)[0]
        tags = re.search(r"tags: (.*)", block).group(1)
        found[name] = dict(pair.split("=", 1) for pair in tags.split(", "))
    return found


def test_labgrid_client_lists_five_places_with_variant_tags(multihost):
    places = places_by_tags(multihost)
    assert sorted(places) == PLACES
    for name, tags in places.items():
        rack = tags["rack"]
        assert tags["variant"] in RACKS[rack] and name == f"{rack}-{tags['variant']}-1"
        assert tags["virtual"] == "yes" and tags["layout"]
    assert places["rack-a-stm32l0-1"]["rig_tags"] == "mcuboot,smp,low-power"


def test_rig_boards_lists_the_same_five(multihost):
    result = multihost.rig("boards", "--rig-coordinator", multihost.address)
    assert result.returncode == 0, result.stderr
    listed = sorted(re.findall(r"(rack-[ab]-\w+-1)", result.stdout))
    assert listed == PLACES
    only = multihost.rig("boards", "--rig-coordinator", multihost.address, "--rig-select", "variant=stm32l0")
    assert sorted(re.findall(r"(rack-[ab]-\w+-1)", only.stdout)) == ["rack-a-stm32l0-1", "rack-b-stm32l0-1"]


def test_place_sync_is_idempotent_and_survives_an_exporter_restart(multihost):
    before = multihost.client("-v", "places").stdout
    multihost.stop("rack-b")
    # The coordinator keeps the places; the stopped exporter's resources are gone.
    assert "rack-b" not in multihost.client("resources").stdout
    multihost.start_exporter("rack-b")
    assert "rack-b/esp32-1" in multihost.client("resources").stdout
    after = multihost.client("-v", "places").stdout
    assert sorted(places_by_tags(multihost)) == PLACES
    # Same tags and one match per place: exporting again changed nothing.
    assert re.findall(r"tags: .*|matches:\n.*\n.*", before) == re.findall(r"tags: .*|matches:\n.*\n.*", after)


def test_a_bad_coordinator_is_one_line(multihost):
    result = multihost.rig("boards", "--rig-coordinator", "127.0.0.1:1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rig: error: coordinator 127.0.0.1:1 does not answer; is labgrid-coordinator running there "
        "(--rig-coordinator HOST:PORT)?"]
