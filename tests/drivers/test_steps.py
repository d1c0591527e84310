"""Boards driven from a thread each (rig ota, rig demo) keep labgrid's step log consistent."""

import threading
import time

from labgrid.step import step, steps

import rig.drivers  # noqa: F401  (installs the per-thread step stack)


class Driver:
    @step()
    def work(self):
        time.sleep(0.005)


def test_steps_of_boards_in_threads_nest_per_thread():
    errors = []

    def board():
        try:
            for _ in range(40):
                Driver().work()
        except AssertionError as exc:  # labgrid's "the step closed is the last one opened"
            errors.append(exc)

    threads = [threading.Thread(target=board) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert steps.get_current() is None
