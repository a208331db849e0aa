"""The server's log format, one for every logger (uvicorn's too): each line names the
request it was written for, by its X-Request-Id, or `-` outside any request."""

from __future__ import annotations

import logging
from typing import Any

from schema.edge import request_id


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to each record, from the context of the code that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def logging_config(level: str, *, process: bool = False, access_log: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` (and uvicorn `log_config`) for the server.

    `process` adds the process id, for several workers on one log. uvicorn's access
    lines are kept when `access_log`; they are written while the request's task runs,
    so they carry its id too."""
    line = "%(asctime)s " + ("%(process)d " if process else "")
    line += "%(levelname)s %(name)s [%(request_id)s]: %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        # uvicorn sets `use_colors` on formatters named so when told to colour.
        "formatters": {"default": {"format": line}, "access": {"format": line}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        "loggers": {
            # uvicorn's own handlers go: its lines take the root's way and format.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": access_log},
        },
    }
