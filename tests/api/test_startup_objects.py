"""A serving process freezes what its start made (schema.app.freeze_startup_objects), so
that the garbage collector's full passes do not walk the schema again for every page
read: both entry points do it once the app is built, before uvicorn serves it."""

from __future__ import annotations

import contextlib
import gc
import logging.config
import signal
from collections.abc import Iterator

import pytest
import uvicorn

from schema import asgi
from schema import serve as serve_module
from schema.app import create_app
from schema.settings import Settings

NOWHERE = "postgresql://postgres@/postgres?host=/nowhere"  # never connected to


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """This test process is not a server: what a test froze is given back to the collector."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def collected(app: object) -> bool:
    """Whether the collector's passes still walk app (frozen objects are in no generation)."""
    return any(tracked is app for tracked in gc.get_objects())


def test_make_run_freezes_the_app_it_built_before_uvicorn_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, object] = {}

    @contextlib.contextmanager
    def embedded(_: Settings) -> Iterator[str]:
        yield NOWHERE

    def run(app: object, **options: object) -> None:
        served.update(collected=collected(app), frozen=gc.get_freeze_count())

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTH", raising=False)  # open, as without DATABASE_URL
    monkeypatch.setenv("WORKERS", "1")
    monkeypatch.setenv("LOAD_DEMO_DATA", "false")
    monkeypatch.setattr(serve_module, "database", embedded)
    monkeypatch.setattr(serve_module, "upgrade_to_head", lambda url: None)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's SIGTERM be
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)  # pytest's logs
    monkeypatch.setattr(uvicorn, "run", run)

    serve_module.main()

    assert served["frozen"]
    assert served["collected"] is False


def test_the_asgi_factory_freezes_the_app_it_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", NOWHERE)
    monkeypatch.setenv("AUTH", "open")
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)  # pytest's logs

    app = asgi.create()

    assert gc.get_freeze_count()
    assert not collected(app)


def test_an_app_built_by_create_app_alone_is_not_frozen() -> None:
    """Tests build many apps in one process; and the check above can fail."""
    app = create_app(Settings(_env_file=None, database_url=NOWHERE, auth="open"))

    assert collected(app)
    assert gc.get_freeze_count() == 0
