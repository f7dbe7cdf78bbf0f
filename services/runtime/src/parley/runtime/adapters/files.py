"""Session files: bytes in the JetStream object store ``parley-files``, facts as events.

The object's name is the file id; ``file.uploaded`` carries name, type, size and sha256.
"""

import hashlib

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig
from nats.js.api import StorageType
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from parley.aggregates.session import Session
from parley.contracts import subjects
from parley.contracts.errors import ErrorCode
from parley.runtime.errors import RuntimeFault
from parley.runtime.tools import ToolError

__all__ = ["ALLOWED_TYPES", "FileStore", "SessionFiles", "check_upload"]

ALLOWED_TYPES = ("text/", "application/json", "application/pdf", "image/png", "image/jpeg")
"""Content types a session accepts (a trailing `/` allows the whole family)."""
TEXT_TYPES = ("text/", "application/json")


def check_upload(name: str, content_type: str, data: bytes, max_bytes: int) -> str:
    """Validate an upload; return its sha256.

    Raises:
        RuntimeFault: ``PAYLOAD_TOO_LARGE`` or ``UNSUPPORTED_MEDIA_TYPE``, or
            ``VALIDATION_ERROR`` for an empty file.
    """
    if len(data) > max_bytes:
        raise RuntimeFault(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"file {name!r} is {len(data)} bytes; the limit is {max_bytes} bytes",
        )
    if not data:
        raise RuntimeFault(ErrorCode.VALIDATION_ERROR, f"file {name!r} is empty")
    base = content_type.split(";")[0].strip().lower()
    if not any(base.startswith(t) if t.endswith("/") else base == t for t in ALLOWED_TYPES):
        raise RuntimeFault(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"content type {content_type!r} is not accepted; use text/*, application/json,"
            " application/pdf, image/png or image/jpeg",
        )
    return hashlib.sha256(data).hexdigest()


def is_text(content_type: str) -> bool:
    """Whether a file's text can be given to a model."""
    base = content_type.split(";")[0].strip().lower()
    return any(base.startswith(t) if t.endswith("/") else base == t for t in TEXT_TYPES)


class FileStore:
    """The object store bucket holding every session file."""

    def __init__(self, js: JetStreamContext, *, replicas: int = 1) -> None:
        self.js, self.replicas = js, replicas
        self._bucket: ObjectStore | None = None

    async def start(self) -> None:
        """Create or open the bucket."""
        self._bucket = await self.js.create_object_store(
            subjects.FILES_BUCKET,
            ObjectStoreConfig(storage=StorageType.FILE, replicas=self.replicas),
        )

    @property
    def bucket(self) -> ObjectStore:
        assert self._bucket is not None, "FileStore.start() first"
        return self._bucket

    async def put(self, file_id: str, data: bytes) -> None:
        """Store a file's bytes."""
        await self.bucket.put(file_id, data)

    async def get(self, file_id: str) -> bytes | None:
        """A file's bytes, or None when gone."""
        try:
            result = await self.bucket.get(file_id)
        except NotFoundError:
            return None
        return result.data or b""

    async def delete(self, file_id: str) -> None:
        """Remove a file's bytes (a missing object is fine)."""
        try:
            await self.bucket.delete(file_id)
        except NotFoundError:
            pass


class SessionFiles:
    """The ``read_file`` tool's view: one session's files, by id or name."""

    def __init__(self, store: FileStore, session: Session) -> None:
        self.store, self.session = store, session

    async def read(self, name_or_id: str) -> tuple[str, str, bytes]:
        """(name, content type, bytes) of a session file.

        Raises:
            ToolError: ``not_found`` when the session has no such file.
        """
        meta = self.session.file(name_or_id)
        data = None if meta is None else await self.store.get(meta.file_id)
        if meta is None or data is None:
            raise ToolError("not_found", f"the session has no file {name_or_id!r}")
        return meta.name, meta.content_type, data
