"""esptool's one global logger, with ESP32 boards driven from a thread each (rig ota, rig demo):
each thread's esptool progress reaches the operation that thread runs, and afterwards esptool's
own logger is in charge again."""

import threading

from esp_pylib.logger import EspLog
from esptool.logger import log

from rig.drivers.esplog import quiet_esptool


def test_each_thread_reports_to_its_own_operation_and_the_logger_comes_back():
    seen: dict[str, list[int]] = {"a": [], "b": []}
    inside = threading.Barrier(2)

    def board(name: str, total: int) -> None:
        with quiet_esptool(lambda done, of: seen[name].append(done), total):
            inside.wait()  # both operations open at once
            for i in range(1, 5):
                log.progress_bar(i, 4)
            inside.wait()

    threads = [threading.Thread(target=board, args=("a", 400)), threading.Thread(target=board, args=("b", 80))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": [100, 200, 300, 400], "b": [20, 40, 60, 80]}
    with quiet_esptool():
        pass
    assert isinstance(getattr(EspLog.instance, "original", EspLog.instance), EspLog)  # esptool's, not a job's
    log.note("esptool's own logger takes this")  # outside any operation: no error, not routed to a job
