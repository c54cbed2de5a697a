"""gunicorn settings for the web tier, derived from the GAS settings object."""

import sys

from gas.settings import SettingsError, load_settings

try:
    _settings = load_settings()
except SettingsError as exc:
    sys.exit(f"web: configuration error: {exc}")

bind = _settings.web_bind
workers = _settings.web_workers
worker_class = "gthread"
threads = 4
graceful_timeout = 5
timeout = 60
accesslog = "-"
# The path without its query string, and no referrer: queries carry login codes
# (/authcallback), upload keys and page cursors, which have no place in a log.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'
# gunicorn 27 opens a control socket under ~/.gunicorn by default: two stacks on one
# machine (a developer's and the tests') would fight over it, and we do not use it.
control_socket_disable = True
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "gas.log.JsonFormatter", "process": "web"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": _settings.log_level, "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
