"""No test, rack or benchmark names a port a lab could be given (issue 13).

Labs, servers and coordinators in tests bind port 0 and publish or report what they got, so parallel
tests, xdist workers and checkouts never collide. A number in a port's place is therefore 0, or below
1024 where a file is only parsed or a dial must fail: neither a lab nor the kernel's port 0 ever lands
there. The scan reads the text as a reviewer's grep would: a port's place is a `port`/`rfc2217` key or
option, a host:port, or any number of 1024 and up on a line that speaks of a port.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "targets", "bench")
SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".json", ".sh"}

PORT_PLACES = [
    re.compile(r"""\b(?:port|rfc2217)["']?\s*[:=]\s*["']?(\d+)""", re.I),  # port: N, port=N, "rfc2217": N
    re.compile(r"""--port["']?[\s,=]+["']?(\d+)"""),  # --port N, "--port", "N"
    re.compile(r"""(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|\]|//[\w.-]+|\b[a-z][\w-]*\.[\w.-]+):(\d+)\b"""),  # host:N
]
PORT_WORD = re.compile(r"(?:\b|_)[Pp]orts?\b|[a-z]Ports?\b")  # port, _ports, SerialPort; not viewport
NUMBER = re.compile(r"(?<![\w.#@%:+=-])(\d{4,5})(?![\w.%])")  # not x=N (a keyword argument: baudrate=9600)
LOWEST_LAB_PORT = 1024


def _lines():
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and path != Path(__file__):
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    yield f"{path.relative_to(REPO)}:{n}", line


def _ports_named(line: str) -> list[int]:
    found = [int(m.group(1)) for pattern in PORT_PLACES for m in pattern.finditer(line)]
    if PORT_WORD.search(line):
        found += [int(m.group(1)) for m in NUMBER.finditer(line)]
    return [p for p in found if LOWEST_LAB_PORT <= p <= 65535]


def test_no_test_rack_or_benchmark_names_a_port_a_lab_could_get():
    offenders = [f"{where}: {line.strip()}" for where, line in _lines() if _ports_named(line)]
    assert not offenders, "ports named (bind port 0 and read back what was bound):\n" + "\n".join(offenders)


def test_the_scan_sees_each_way_of_writing_a_port():
    named = ["NetworkSerialPort: {host: 127.0.0.1, port: 5001}", "where='rfc2217://127.0.0.1:6001'",
             '{"rfc2217": 22101, "pty": "/dev/pts/7"}', '"server", "--port", "40001"', "'http://localhost:8080/x'",
             'ports = {"nucleo-h743zi-1": 40001}', "{'host': 'bench-1.lab:41000'}"]
    not_named = ["port: 0", 'host: "http://127.0.0.1:9/{index}/{value}"', "coordinator 127.0.0.1:1",
                 "data = os.urandom(4096)", "NetworkPowerPort: {model: simplerest, index: 1}", "stall@50%:3000",
                 "serial_for_url(url, baudrate=9600) as port", "not supported: key_size 1024", "viewport 1280"]
    assert [line for line in named if not _ports_named(line)] == []
    assert [line for line in not_named if _ports_named(line)] == []
