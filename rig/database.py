"""Opening an SQL database by URL, for the stores that keep their tables in one (provisioning
records, results, rollouts): SQLite by default, PostgreSQL for a shared one.

One way to open and one way to fail: a URL SQLAlchemy cannot use, or a database that cannot be
reached, is one line naming the store and the URL - its password hidden.
"""

from collections.abc import Callable

from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from rig.errors import RigError


def safe_url(url: str) -> str:
    """The URL without its password, for output."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str, meta: MetaData, what: str, configure: Callable[[Engine], None] | None = None) -> Engine:
    """An engine on `url` with the tables of `meta` created; `what` names the store in errors
    ("results store"), `configure` sets the engine up before its first connection."""
    try:
        engine = create_engine(url)
        if configure is not None:
            configure(engine)
        meta.create_all(engine)
        return engine
    except (ArgumentError, NoSuchModuleError) as exc:
        raise RigError(f"{what} URL {safe_url(url)!r} is not usable: {exc}; "
                       "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB") from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise RigError(f"{what} {safe_url(url)!r} cannot be opened: {reason}") from None
