"""Structured logs: one JSON object a line on stderr, from the web app, the worker and the audit log.

python-json-logger is a formatter for the standard `logging` module, so every
existing `app.logger` call, Flask's and werkzeug's messages come out as JSON
unchanged; structlog would have meant rewriting each call. A SIEM reads the
`fieldapp.audit` logger for audit events. Log lines carry ids, states and
outcomes, never names, notes or addresses.
"""
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

AUDIT = logging.getLogger("fieldapp.audit")
WORKER = logging.getLogger("fieldapp.worker")


class StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever sys.stderr is at the time (so test capture and reassignment work)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def formatter():
    """The JSON formatter: time, level, logger and message, plus any `extra` fields."""
    return JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def init_app(app):
    """Send the `fieldapp` loggers (and werkzeug's) to stderr as JSON; LOG_FORMAT=text keeps plain lines."""
    from flask.logging import default_handler

    app.logger.removeHandler(default_handler)
    handler = next((h for h in app.logger.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:  # one handler a process, however many apps (tests make many)
        handler = StderrHandler()
        app.logger.addHandler(handler)
        logging.getLogger("werkzeug").addHandler(handler)
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    app.logger.setLevel(app.config["LOG_LEVEL"])
