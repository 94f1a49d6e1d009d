from __future__ import annotations

import gc
import os
from contextvars import Token
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_tokens: dict[str, Token[str]] = {}


@task_prerun.connect
def _task_log_id(task_id: str | None = None, **kwargs: Any) -> None:
    """A task's log lines carry its ID where a request's carry the request ID."""
    from .requestcontext import request_id

    if task_id:
        _tokens[task_id] = request_id.set(f"task-{task_id}")


@task_postrun.connect
def _task_log_id_reset(task_id: str | None = None, **kwargs: Any) -> None:
    from .requestcontext import request_id

    token = _tokens.pop(task_id or "", None)
    if token is not None:
        request_id.reset(token)


@worker_process_init.connect
def _freeze_loaded(**kwargs: Any) -> None:
    """As portal.wsgi does for web workers: what a worker process loaded at start is left out of
    the garbage collector's full collections."""
    gc.freeze()
