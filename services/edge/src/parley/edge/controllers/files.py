"""`/api/v1/sessions/{id}/files`: upload (multipart), list, read, download, delete.

The runtime stores a file's bytes in the JetStream object store ``FILES_BUCKET`` under the
file's id and records ``file.uploaded``; metadata is read from the runtime projection and
the bytes straight from the object store.
"""

import re
from urllib.parse import quote

import nats.errors
import nats.js.errors
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from nats.aio.client import Client

from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import DeleteFile
from parley.contracts.runtime import UploadFile as UploadFileCommand
from parley.contracts.subjects import FILES_BUCKET
from parley.edge.controllers.lookups import SESSION_SCOPE
from parley.edge.controllers.lookups import SessionScope
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import created
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.openapi import UPLOAD
from parley.edge.projections.runtime_views import FileView
from parley.edge.settings import EdgeSettings

__all__ = ["ALLOWED_TYPES", "file_router"]

ALLOWED_TYPES = ("text/", "application/json", "application/pdf", "image/png", "image/jpeg")
"""Accepted content types (a trailing `/` accepts the whole family)."""
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def _file(session: NamedDependency[SessionScope], file_id: FromPath[str]) -> FileView:
    """The file ``file_id`` of the live session (``404`` for either, in that order): also the
    ``file`` dependency of the routes under `/files/{file_id}`."""
    for view in session.live().files:
        if view.id == file_id:
            return view
    raise ApiError(
        ErrorCode.FILE_NOT_FOUND,
        f"session {session.id} has no file {file_id[:64]}",
        {"file_id": file_id[:64]},
    )


def _safe_name(filename: str | None) -> str:
    base = re.split(r"[/\\]", filename or "")[-1]
    name = _UNSAFE_NAME.sub("_", base).strip()[:255]
    return name or "file"


def _accepted(content_type: str) -> bool:
    return any(
        content_type.startswith(t) if t.endswith("/") else content_type == t for t in ALLOWED_TYPES
    )


@post(
    "/{session_id:str}/files",
    status_code=201,
    summary="Upload a session file",
    description="`multipart/form-data` with the file in the field `file`. At most"
    " `PARLEY_EDGE_MAX_FILE_BYTES` (512 KiB by default); text/*, application/json,"
    " application/pdf, image/png or image/jpeg.",
    opt={UPLOAD: "file"},
    responses=error_responses(400, 404, 413, 415, 422, 503, 504),
)
async def upload_file(
    session: NamedDependency[SessionScope], settings: NamedDependency[EdgeSettings]
) -> Response[Data[FileView]]:
    """Attach a file to a session."""
    session.live()
    request = session.request
    media_type, _ = request.content_type
    if media_type.lower() != "multipart/form-data":
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"unsupported Content-Type {media_type!r}; send multipart/form-data with a `file`"
            " field",
            {"accepted": ["multipart/form-data"]},
        )
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "the form has no file in the field `file`",
            [{"field": "body.file", "message": "required"}],
        )
    try:
        data = await upload.read()
    finally:
        await upload.close()
    limit = settings.max_file_bytes
    if len(data) > limit:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the file is {len(data)} bytes; the limit is {limit} bytes",
            {"size": len(data), "limit": limit},
        )
    if not data:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            "the file is empty",
            [{"field": "body.file", "message": "empty"}],
        )
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if not _accepted(content_type):
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"file type {content_type or 'unknown'!r} is not accepted; use text/*,"
            " application/json, application/pdf, image/png or image/jpeg",
            {"accepted": list(ALLOWED_TYPES)},
        )
    command = UploadFileCommand(
        namespace=session.ns,
        session_id=session.id,
        name=_safe_name(upload.filename),
        content_type=content_type,
        data=data,
    )
    reply = await session.writes.runtime("upload_file", command)
    view = _file(session, reply.file_id or "")
    return created(view, f"/api/v1/sessions/{session.id}/files/{view.id}")


@get("/{session_id:str}/files", summary="List a session's files", responses=error_responses(404))
async def list_files(session: NamedDependency[SessionScope]) -> Data[list[FileView]]:
    """Every file of the session, in upload order."""
    return Data(data=list(session.live().files))


@get(
    "/{session_id:str}/files/{file_id:str}",
    summary="Read a file's metadata",
    responses=error_responses(404),
)
async def get_file(file: NamedDependency[FileView]) -> Data[FileView]:
    """Name, type, size, sha256 and upload time."""
    return Data(data=file)


@get(
    "/{session_id:str}/files/{file_id:str}/content",
    summary="Download a file",
    responses=error_responses(404, 503),
    media_type="application/octet-stream",
)
async def file_content(
    file: NamedDependency[FileView], nc: NamedDependency[Client]
) -> Response[bytes]:
    """The file's bytes, with its content type."""
    try:
        bucket = await nc.jetstream().object_store(FILES_BUCKET)
        result = await bucket.get(file.id)
    except nats.js.errors.NotFoundError:
        raise ApiError(
            ErrorCode.FILE_NOT_FOUND,
            f"the bytes of file {file.id} are gone",
            {"file_id": file.id},
        ) from None
    except nats.errors.Error:
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "the file store is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        ) from None
    fallback = file.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file.name)}"
    return Response(
        result.data or b"",
        media_type=file.content_type,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
        },
    )


@delete(
    "/{session_id:str}/files/{file_id:str}",
    status_code=204,
    summary="Delete a file",
    responses=error_responses(404, 503, 504),
)
async def delete_file(
    session: NamedDependency[SessionScope], file: NamedDependency[FileView]
) -> None:
    """Remove a file from the session."""
    command = DeleteFile(namespace=session.ns, session_id=session.id, file_id=file.id)
    await session.writes.runtime("delete_file", command)


file_router = Router(
    path="/api/v1/sessions",
    route_handlers=[upload_file, list_files, get_file, file_content, delete_file],
    dependencies={**SESSION_SCOPE, "file": Provide(_file, sync_to_thread=False)},
    tags=["sessions"],
)
"""The session file routes."""
