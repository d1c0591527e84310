"""The one error type a user sees: a single line that says what is wrong and what to do."""


class RigError(Exception):
    """An expected failure caused by input or environment; printed as one line, never a traceback."""


class ConsoleTimeout(RigError):
    """The console showed no line the caller waited for; the message quotes what it showed instead."""


class PowerCutDuringUpload(RigError):
    """The rig cut the board's power while the host was uploading to it: the upload died with the
    board (an injected fault, not a refusal)."""

    def __init__(self, offset: int):
        self.offset = offset
        super().__init__(f"power cut at upload offset {offset}")


class BoardRefused(RigError):
    """The board answered a request with an error reply. The message says which request and what
    the board said; `reason` is what it said alone, in the protocol's names (a table's column)."""

    def __init__(self, request: str, reason: str):
        self.reason = reason
        super().__init__(f"{request} refused by the board: {reason}")


class HandoverRefused(RigError):
    """An update could not be handed to the board: the board refused it (an SMP error reply), the
    host did (not an image it can send), or the board did not answer."""


class RigErrors(RigError):
    """Several independent problems found in one pass (for example, a whole inventory file)."""

    def __init__(self, lines):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))
