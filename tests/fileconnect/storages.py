"""A real local storage whose reads fail part-way, as a failing disk or network share does."""

from __future__ import annotations

from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

FAIL_AFTER = 1024 * 1024


class _BreakingFile:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        if self._handle.tell() >= FAIL_AFTER:
            raise OSError(5, "Input/output error")
        return self._handle.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


class FailingStorage(FileSystemStorage):
    def _open(self, name: str, mode: str = "rb") -> File:
        return File(_BreakingFile(open(self.path(name), mode)))


class TruncatingStorage(FileSystemStorage):
    """A local storage that keeps only the first bytes of what it is given, as a buggy backend
    or a full disk that does not report it would."""

    def _save(self, name: str, content: File) -> str:
        return super()._save(name, ContentFile(content.read(10)))
