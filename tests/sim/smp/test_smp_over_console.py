"""The real smpclient against a virtual STM32 board's console pty, as a user's OTA tool would run.

Verdicts come from protocol replies, console text and flash read-back of the flash file - the
same views a real board offers (SMP, UART, a debug probe) - never from the server's objects.
"""

import asyncio
import hashlib
import os

import cbor2
import pytest
import serial
from smp import header as smpheader
from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.requests.image_management import ImageErase, ImageStatesRead, ImageStatesWrite, ImageUploadWrite
from smpclient.requests.os_management import (
    BootloaderInformationRead,
    EchoWrite,
    MCUMgrParametersRead,
    ResetWrite,
    TaskStatisticsRead,
)

from rig.image import mcuboot
from rig.image.trailer import Flag, Magic, SwapType, Trailer
from tests.sim.smp.conftest import read_console_until


def run(coro):
    return asyncio.run(coro)


def sha_tlv(image: bytes) -> bytes:
    """The image's SHA256 TLV, the hash img_mgmt names images by."""
    return mcuboot.parse(image).find(mcuboot.TLV_SHA256)[0].value


def group_rc(response) -> int:
    assert error_v2(response), response
    assert response.err.group == smpheader.GroupId.IMAGE_MANAGEMENT
    return response.err.rc


async def upload(client, image: bytes) -> list[int]:
    return [off async for off in client.upload(image)]


def test_echo_transport_parameters_and_bootloader_info(rig):
    async def go():
        async with rig.client() as (client, transport):
            return (await client.request(EchoWrite(d="héllo, board")),
                    await client.request(MCUMgrParametersRead()),
                    await client.request(BootloaderInformationRead()),
                    # Zephyr answers the "mode" query with top-level keys that smp's response model
                    # does not describe, so this one is read as the raw frame.
                    await transport.send_and_receive(BootloaderInformationRead(query="mode").BYTES))

    echo, params, bootloader, mode = run(go())
    assert success(echo) and echo.r == "héllo, board"
    assert success(params) and (params.buf_size, params.buf_count) == (2048, 4)
    assert success(bootloader) and bootloader.bootloader == "MCUboot"
    assert cbor2.loads(mode[8:]) == {"mode": 3, "no-downgrade": True}  # MCUboot swap using move


def test_state_lists_the_running_image(rig, make_image):
    async def go():
        async with rig.client() as (client, _):
            return await client.request(ImageStatesRead())

    state = run(go())
    running = rig.read_flash("slot0")
    assert success(state) and len(state.images) == 1 and state.splitStatus == 0
    slot0 = state.images[0]
    assert (slot0.slot, slot0.version, slot0.hash) == (0, "1.0.0", sha_tlv(running))
    assert (slot0.bootable, slot0.active, slot0.confirmed, slot0.pending, slot0.permanent) == (
        True, True, True, False, False)


def test_upload_test_reset_and_the_new_image_runs(rig, make_image):
    old = rig.read_flash("slot0")
    image = make_image(rig.variant, "1.1.0+7", size=20_000)
    seen = {}

    async def go():
        async with rig.client() as (client, transport):
            seen["offsets"] = await upload(client, image)
            seen["slot1"] = rig.read_flash("slot1", len(image))
            seen["listed"] = await client.request(ImageStatesRead())
            seen["tested"] = await client.request(ImageStatesWrite(hash=sha_tlv(image)))
            seen["trailer"] = rig.trailer("slot1")
            seen["reset"] = await client.request(ResetWrite())
            seen["console"] = await read_console_until(transport, "rig: confirmed", after="reset=software")
            seen["after"] = await client.request(ImageStatesRead())

    run(go())
    assert seen["offsets"][-1] == len(image) and seen["offsets"] == sorted(seen["offsets"])
    assert seen["slot1"] == image
    listed = seen["listed"].images
    assert [(i.slot, i.version, i.hash) for i in listed] == [(0, "1.0.0", sha_tlv(old)), (1, "1.1.0.7", sha_tlv(image))]
    assert not listed[1].pending and not listed[1].confirmed
    tested = seen["tested"].images
    assert (tested[1].pending, tested[1].permanent) == (True, False)
    trailer = seen["trailer"]
    assert (trailer.magic, trailer.image_ok, trailer.swap_type) == (Magic.GOOD, Flag.UNSET, SwapType.TEST)
    assert success(seen["reset"])
    # MCUboot swapped the images at the reset; the new one booted, passed its health check, confirmed.
    assert "I: Swap type: test" in seen["console"]
    assert f"rig: boot variant={rig.variant} version=1.1.0+7 slot=0 reset=software" in seen["console"]
    after = seen["after"].images
    assert [(i.slot, i.version, i.active, i.confirmed) for i in after] == [
        (0, "1.1.0.7", True, True), (1, "1.0.0", False, False)]


def test_unconfirmed_image_reverts_and_a_confirmed_one_stays(rig, make_image):
    image = make_image(rig.variant, "1.1.0", fault="no-confirm")  # leaves confirming to the SMP client
    seen = {}

    async def reset_and_boot(client, transport, version: str) -> str:
        await client.request(ResetWrite())
        return await read_console_until(transport, f"version={version}+0 slot=0 reset=software")

    async def go():
        async with rig.client() as (client, transport):
            await upload(client, image)
            await client.request(ImageStatesWrite(hash=sha_tlv(image)))
            await reset_and_boot(client, transport, "1.1.0")
            seen["on trial"] = await client.request(ImageStatesRead())
            seen["revert"] = await reset_and_boot(client, transport, "1.0.0")
            seen["reverted"] = await client.request(ImageStatesRead())
            await client.request(ImageStatesWrite(hash=sha_tlv(image)))
            await reset_and_boot(client, transport, "1.1.0")
            seen["confirm"] = await client.request(ImageStatesWrite(confirm=True))
            seen["image_ok"] = rig.trailer("slot0").image_ok
            seen["kept"] = await reset_and_boot(client, transport, "1.1.0")

    run(go())
    on_trial = seen["on trial"].images
    assert [(i.slot, i.version, i.active, i.confirmed) for i in on_trial] == [
        (0, "1.1.0", True, False), (1, "1.0.0", False, True)]
    assert "I: Swap type: revert" in seen["revert"]
    reverted = seen["reverted"].images
    assert [(i.slot, i.version, i.confirmed) for i in reverted] == [(0, "1.0.0", True), (1, "1.1.0", False)]
    assert [(i.slot, i.version, i.confirmed) for i in seen["confirm"].images][0] == (0, "1.1.0", True)
    assert seen["image_ok"] is Flag.SET
    assert "I: Swap type: none" in seen["kept"]


def test_permanent_upgrade(rig, make_image):
    image = make_image(rig.variant, "2.0.0")

    async def go():
        async with rig.client() as (client, _):
            await upload(client, image)
            return await client.request(ImageStatesWrite(hash=sha_tlv(image), confirm=True))

    state = run(go())
    assert (state.images[1].pending, state.images[1].permanent) == (True, True)
    trailer = rig.trailer("slot1")
    assert (trailer.magic, trailer.image_ok, trailer.swap_type) == (Magic.GOOD, Flag.SET, SwapType.PERM)


def test_erase_and_refusing_to_erase_a_pending_image(rig, make_image):
    first, second = make_image(rig.variant, "1.1.0"), make_image(rig.variant, "1.2.0")

    async def go():
        async with rig.client() as (client, _):
            await upload(client, first)
            erased = await client.request(ImageErase())
            listed = await client.request(ImageStatesRead())
            await upload(client, second)
            await client.request(ImageStatesWrite(hash=sha_tlv(second)))
            refused = await client.request(ImageErase())
            return erased, listed, refused

    erased, listed, refused = run(go())
    assert success(erased)
    assert [i.slot for i in listed.images] == [0]
    assert group_rc(refused) == IMG_MGMT_ERR.NO_FREE_SLOT
    assert rig.read_flash("slot1", len(second)) == second


def test_upload_resumes_after_a_broken_link(rig, make_image):
    image = make_image(rig.variant, "1.1.0", size=30_000)

    async def first_attempt():
        async with rig.client() as (client, _):
            async for off in client.upload(image):
                if off > len(image) // 3:
                    return off

    async def second_attempt():
        async with rig.client() as (client, _):
            return await upload(client, image)

    stopped = run(first_attempt())
    offsets = run(second_attempt())
    assert offsets[0] == stopped  # the board said where to go on, not 0
    assert rig.read_flash("slot1", len(image)) == image


def test_a_new_upload_overwrites_the_last_one_page_by_page(rig, make_image):
    # The flash model refuses to program a written unit: the second upload only lands because the
    # server erases each page ahead of writing it, as Zephyr's progressive erase does.
    first, second = make_image(rig.variant, "1.1.0", size=30_000), make_image(rig.variant, "1.2.0", size=9_000)

    async def go():
        async with rig.client() as (client, _):
            await upload(client, first)
            await upload(client, second)
            return await client.request(ImageStatesRead())

    state = run(go())
    assert rig.read_flash("slot1", len(second)) == second
    assert [(i.slot, i.version) for i in state.images] == [(0, "1.0.0"), (1, "1.2.0")]


def test_power_cut_during_upload_then_a_fresh_upload(rig, make_image):
    image = make_image(rig.variant, "1.1.0", size=30_000)

    async def cut_short():
        async with rig.client(timeout=1.0) as (client, _):
            rig.board.arm_cut(after_ops=6)  # the lab's power-cut relay, armed on a flash operation
            async for _ in client.upload(image, first_timeout_s=1.0):
                pass

    async def again():
        async with rig.client() as (client, _):
            return await upload(client, image), await client.request(ImageStatesRead())

    with pytest.raises(TimeoutError):
        run(cut_short())
    offsets, state = run(again())
    assert offsets[0] < 2048 and offsets[-1] == len(image)  # RAM was lost: the upload started over
    assert rig.read_flash("slot1", len(image)) == image
    assert [(i.slot, i.version) for i in state.images] == [(0, "1.0.0"), (1, "1.1.0")]


@pytest.mark.parametrize("variant", ["stm32l0"])
def test_refusals_carry_zephyrs_codes(rig, make_image):
    image = make_image(rig.variant, "1.1.0")
    too_big = Trailer.for_layout(rig.layout, "slot1").max_image_size + 1
    unknown = hashlib.sha256(b"no such image").digest()

    async def go():
        async with rig.client() as (client, _):
            sha = hashlib.sha256(image).digest()
            return {
                "too big": await client.request(ImageUploadWrite(off=0, data=image[:512], len=too_big, sha=sha)),
                "bad magic": await client.request(ImageUploadWrite(off=0, data=bytes(64), len=64)),
                "no len": await client.request(ImageUploadWrite(off=0, data=image[:512])),
                "downgrade": await client.request(ImageUploadWrite(
                    off=0, data=make_image(rig.variant, "1.0.0+9")[:512], len=len(image), upgrade=True)),
                "unknown hash": await client.request(ImageStatesWrite(hash=unknown)),
                "test without hash": await client.request(ImageStatesWrite()),
                "test the running image": await client.request(
                    ImageStatesWrite(hash=sha_tlv(rig.read_flash("slot0"))))
            }

    r = run(go())
    assert group_rc(r["too big"]) == IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE
    assert group_rc(r["bad magic"]) == IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC
    assert group_rc(r["no len"]) == IMG_MGMT_ERR.INVALID_LENGTH
    assert group_rc(r["downgrade"]) == IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER
    assert group_rc(r["unknown hash"]) == IMG_MGMT_ERR.HASH_NOT_FOUND
    assert group_rc(r["test without hash"]) == IMG_MGMT_ERR.INVALID_HASH
    assert group_rc(r["test the running image"]) == 33  # IMAGE_SETTING_TEST_TO_ACTIVE_DENIED


@pytest.mark.parametrize("variant", ["stm32h7"])
def test_smp_v1_clients_get_translated_rc(rig):
    async def go():
        async with rig.client() as (client, _):
            return (await client.request(ImageStatesWrite(version=smpheader.Version.V1)),
                    await client.request(TaskStatisticsRead()))

    no_hash, unsupported = run(go())
    assert error_v1(no_hash) and no_hash.rc == MGMT_ERR.EINVAL
    assert error(unsupported) and unsupported.rc == MGMT_ERR.ENOTSUP


@pytest.mark.parametrize("variant", ["stm32h7"])
def test_test_of_an_invalid_image_is_refused(rig, make_image):
    # An upload whose TLV area has no SHA256 entry: the bytes land, but img_mgmt does not list
    # the slot and cannot find the image to test.
    image = bytearray(make_image(rig.variant, "1.1.0"))
    parsed = mcuboot.parse(bytes(image))
    sha_value = parsed.find(mcuboot.TLV_SHA256)[0]
    image[sha_value.offset - 4 : sha_value.offset - 2] = (0x7F).to_bytes(2, "little")  # retype the TLV

    async def go():
        async with rig.client() as (client, _):
            await upload(client, bytes(image))
            return (await client.request(ImageStatesRead()),
                    await client.request(ImageStatesWrite(hash=sha_value.value)))

    listed, tested = run(go())
    assert [i.slot for i in listed.images] == [0]
    assert group_rc(tested) == IMG_MGMT_ERR.HASH_NOT_FOUND


@pytest.mark.parametrize("variant", ["stm32h7"])
def test_upload_with_a_wrong_sha_reports_no_match(rig, make_image):
    image = make_image(rig.variant, "1.1.0", size=1200)  # one request carries it all

    async def go():
        async with rig.client() as (client, _):
            bogus = ImageUploadWrite(off=0, data=image, len=len(image), sha=hashlib.sha256(b"other").digest())
            return await client.request(bogus)

    reply = run(go())
    assert success(reply) and (reply.off, reply.match) == (len(image), False)


def test_garbage_on_the_line_is_ignored(rig):
    with serial.Serial(rig.console.path) as port:
        port.write(os.urandom(20_000))
        port.write(b"\x06\x09" + os.urandom(300) + b"\n\x04\x14AAAA\n" + b"\x06\x09!!notbase64!!\n")
        port.flush()

    async def go():
        async with rig.client() as (client, _):
            return await client.request(EchoWrite(d="still here"))

    assert run(go()).r == "still here"  # the board's firmware is alive and in sync again


@pytest.mark.parametrize("variant", ["stm32h7"])
def test_upload_error_surfaces_in_smpclient(rig, make_image):
    image = make_image(rig.variant, "1.1.0")

    async def go():
        async with rig.client() as (client, _):
            await upload(client, image)
            await client.request(ImageStatesWrite(hash=sha_tlv(image)))
            await upload(client, make_image(rig.variant, "1.2.0"))  # slot 1 is pending: no free slot

    with pytest.raises(SMPUploadError):
        run(go())
