"""``/api/v1/images``: list, fetch, upload, change and delete images (InvokeAI's paths where they match)."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from invoke_sdk.image_json_pages import ImageRecordJsonPage, NameField
from invoke_sdk.images import (
    ImageCategory,
    ImageListFilters,
    ImageNotFoundError,
    ImageOrigin,
    ImageRecord,
    ImageRecordChanges,
    InvalidImageCursorError,
    OrderDir,
)
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from invoke_host.api.injected import Injected, Unavailable, ensure_available
from invoke_host.api_versions import API_V1
from invoke_host.config import HostConfig
from invoke_host.images.page_cache import CachedResponse
from invoke_host.images.replay import NothingToReplayError, ReplayResult, plan_replay
from invoke_host.images.run_manifest import RunManifestBuilder
from invoke_host.images.service import ImagesService
from invoke_host.images.uploads import ImageTooLargeError, UnsupportedImageError
from invoke_host.queue import Batch, BatchError, QueueService

__all__ = [
    "DeleteImagesRequest", "DeleteImagesResult", "ImageDTO", "ImageDTOPage", "ImageReplay", "ImageUploads",
    "ImagesController", "WorkflowAndGraph", "cached_responses",
]

logger = logging.getLogger("invoke_host.images")

PREFIX = f"{API_V1}/images"
# Room for the multipart boundaries and part headers around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024
_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Names are never reused, so a fetched image never changes.
    "Cache-Control": "private, max-age=31536000, immutable",
}


class ImageDTO(ImageRecord):
    """An image record with the URLs of its files."""

    image_url: str = Field(description="Where the full-size PNG is served")
    thumbnail_url: str = Field(description="Where the WebP thumbnail is served")

    @classmethod
    def of(cls, record: ImageRecord) -> "ImageDTO":
        return cls(**record.model_dump(), **_urls(record.image_name))

    @classmethod
    def many(cls, records: Sequence[ImageRecord]) -> "list[ImageDTO]":
        """DTOs of a page of records in one validation call (a listing's main cost after the query)."""
        return _DTOS.validate_python([{**r.__dict__, **_urls(r.image_name)} for r in records])


def _urls(image_name: str) -> dict[str, str]:
    base = f"{PREFIX}/i/{image_name}"
    return {"image_url": f"{base}/full", "thumbnail_url": f"{base}/thumbnail"}


_DTOS: TypeAdapter[list[ImageDTO]] = TypeAdapter(list[ImageDTO])
# ImageDTO's fields beyond the record's, for a store that encodes the page itself: the same strings as _urls.
_URL_FIELDS = (
    NameField("image_url", f"{PREFIX}/i/", "/full"),
    NameField("thumbnail_url", f"{PREFIX}/i/", "/thumbnail"),
)


def _page_json(page: ImageRecordJsonPage) -> bytes:
    """ImageDTOPage's encoding around the records the store encoded: its fields in the model's order, compact, as
    Litestar writes the model (tests/images/test_listing_json.py holds the two side by side)."""
    offset = "null" if page.offset is None else str(int(page.offset))
    cursor = msgspec.json.encode(page.next_cursor).decode()
    return (
        f'{{"items":{page.items_json},"offset":{offset},"limit":{int(page.limit)},"total":{int(page.total)},'
        f'"next_cursor":{cursor}}}'
    ).encode()


class ImageDTOPage(BaseModel):
    """One page of images."""

    items: list[ImageDTO]
    offset: int | None = Field(description="Where the page starts; null when it was asked for by cursor")
    limit: int
    total: int = Field(description="How many images match the filters, over all pages")
    next_cursor: str | None = Field(
        default=None, description="Pass as cursor (with the same order) for the next page; null on the last page"
    )


class WorkflowAndGraph(BaseModel):
    """The workflow and the graph that made an image, each the JSON text it was saved with (InvokeAI's shape)."""

    workflow: str | None = Field(description="The workflow used to generate the image, as stringified JSON")
    graph: str | None = Field(description="The graph used to generate the image, as stringified JSON")


class DeleteImagesRequest(BaseModel):
    """Images to delete."""

    model_config = ConfigDict(extra="forbid")

    image_names: list[str] = Field(max_length=10_000)


class DeleteImagesResult(BaseModel):
    """What was deleted (names that did not exist are left out)."""

    deleted_images: list[str]


@dataclass(frozen=True)
class ImageUploads:
    """What an upload needs: the image store and the settings that bound an upload.

    One dependency, not ``images`` and a ``config``: Litestar resolves two independent dependencies in a task group
    on every request, which costs more than the rest of a small request.
    """

    images: ImagesService | Unavailable
    config: HostConfig


@dataclass(frozen=True)
class ImageReplay:
    """What a replay needs, as one dependency: the image store, the queue, and the manifest of this server."""

    images: ImagesService | Unavailable
    queue: QueueService | Unavailable
    manifest: RunManifestBuilder


def _not_found(exc: ImageNotFoundError) -> NotFoundException:
    # A bad name and a missing image read the same to a client: nothing about the disk leaks.
    return NotFoundException(f"there is no image named {exc.image_name!r}")


def _bool_field(value: Any, name: str) -> bool:
    text = str(value).strip().lower()
    # Exactly the spellings of the query parameter of the same name (and of JSON): the document types it boolean.
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValidationException(f"{name} must be true or false, not {value!r}")


def _category_field(value: Any) -> ImageCategory:
    try:
        return ImageCategory(str(value))
    except ValueError:
        valid = ", ".join(c.value for c in ImageCategory)
        raise ValidationException(f"image_category must be one of {valid}, not {value!r}") from None


def cached_responses(app: ASGIApp) -> ASGIApp:
    """Route middleware: answer a GET from the images service's page cache while no image record has changed.

    It runs inside the host's guards (host check, access token, cross-site, body limits: app middleware, outside
    every route's own), and the app's ``before_send`` hooks add their headers to a cached answer as to any other.
    What it skips on a hit is the route's own work: parsing and checking the query, the store, the validation and
    encoding of the page. A hit is a request whose path and query string are byte for byte those of an earlier 200
    answered under the same records version, so those checks would pass again and the page would read the same.

    The key is the path and query string alone: every caller that passes the guards sees every image (there is
    one access token). Should images ever be visible per user, the caller's identity must join the key.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        images: ImagesService | None = scope["litestar_app"].state.host.images
        cache = images.page_cache if images is not None else None
        if images is None or cache is None or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        # Read before the page is, so a page is never cached under a version newer than what it shows.
        version = await images.records_version()
        if version is None:
            await app(scope, receive, send)
            return
        query = scope["query_string"]
        key = f"{scope['path']}?".encode() + query if query else scope["path"].encode()
        hit = cache.get(key, version)
        if hit is not None:
            await send({"type": "http.response.start", "status": hit.status, "headers": list(hit.headers)})
            await send({"type": "http.response.body", "body": hit.body})
            return
        status = 0
        headers: tuple[tuple[bytes, bytes], ...] = ()
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal status, headers
            # Taken before passing the message on: the before_send hooks replace its headers with their own list.
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = tuple((bytes(k), bytes(v)) for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    cache.put(key, version, CachedResponse(status, headers, b"".join(chunks)))
            await send(message)

        await app(scope, receive, keep)

    return middleware


class ImagesController(Controller):
    """The image store over HTTP."""

    path = "/images"
    tags = ["images"]

    @post(
        "/upload",
        summary="Upload an image (multipart form, field 'file')",
        status_code=201,
        request_max_body_size=None,  # the configurable limit below applies instead
    )
    async def upload_image(
        self,
        request: Request[Any, Any, Any],
        image_uploads: Injected[ImageUploads],
        image_category: FromQuery[ImageCategory] = ImageCategory.user,
        is_intermediate: FromQuery[bool] = False,
    ) -> ImageDTO:
        images, config = image_uploads.images, image_uploads.config
        ensure_available(images)  # a server without an image store says so before judging the upload
        limit = config.max_upload_bytes
        length = request.content_length
        if length is None:
            raise HTTPException(status_code=411, detail="send the upload with a Content-Length header")
        if length > limit + _MULTIPART_OVERHEAD:
            raise HTTPException(
                status_code=413,
                detail=f"the upload is {length:,} bytes; this server accepts images up to {limit:,}: max_upload_bytes "
                f"(INVOKE_HOST_MAX_UPLOAD_BYTES={limit})",
            )
        content_type, _ = request.content_type
        if content_type != "multipart/form-data":
            raise HTTPException(
                status_code=415, detail="send the image as multipart/form-data with the image in a field named 'file'"
            )
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationException("the form has no file in a field named 'file'")
        if "image_category" in form:
            image_category = _category_field(form["image_category"])
        if "is_intermediate" in form:
            is_intermediate = _bool_field(form["is_intermediate"], "is_intermediate")
        data = await upload.read()
        if len(data) > limit:
            raise HTTPException(
                status_code=413,
                detail=f"the image is {len(data):,} bytes; this server accepts images up to {limit:,}: "
                f"max_upload_bytes (INVOKE_HOST_MAX_UPLOAD_BYTES={limit})",
            )
        try:
            record = await images.save_upload(data, image_category=image_category, is_intermediate=is_intermediate)
        except UnsupportedImageError as exc:
            raise HTTPException(status_code=415, detail=str(exc)) from None
        except ImageTooLargeError as exc:
            raise HTTPException(status_code=413, detail=str(exc)) from None
        except (ImageNotFoundError, OSError) as exc:
            # The image is fine and the name is the server's own: the store's folders are not what they must
            # be (images/thumbnails a symlink out of the store, not writable, disk full ...).
            logger.error(
                "Storing an uploaded image failed; the image store cannot write its files (check the folders "
                "under %s): %s",
                config.root / "images",
                exc,
            )
            raise HTTPException(
                status_code=409,
                detail="the server cannot store images right now: its image store refused to write the files "
                "(a problem with the server's data folder, not with this image; the server log says which). "
                "Ask its administrator to fix the folder, then upload again",
            ) from None
        return ImageDTO.of(record)

    @get("/", summary="A page of images, filtered", middleware=[cached_responses])
    async def list_images(
        self,
        images: Injected[ImagesService],
        # schema_extra: Litestar leaves a falsy bound (ge=0) of an optional parameter out of the document.
        offset: Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1, schema_extra={"minimum": 0})] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 10,
        image_origin: FromQuery[ImageOrigin | None] = None,
        categories: FromQuery[list[ImageCategory] | None] = None,
        exclude_categories: FromQuery[list[ImageCategory] | None] = None,
        is_intermediate: FromQuery[bool | None] = None,
        starred_first: FromQuery[bool] = True,
        order_dir: FromQuery[OrderDir] = "DESC",
        search_term: Annotated[str | None, QueryParameter(max_length=200)] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=400, description="next_cursor of the previous page")
        ] = None,
    ) -> Response[ImageDTOPage]:
        if cursor is not None and offset is not None:
            raise HTTPException(status_code=422, detail="give either cursor or offset, not both")
        filters: ImageListFilters = {
            "offset": offset or 0, "limit": limit, "image_origin": image_origin, "categories": categories,
            "exclude_categories": exclude_categories, "is_intermediate": is_intermediate,
            "starred_first": starred_first, "order_dir": order_dir, "search_term": search_term, "cursor": cursor,
        }
        try:
            # The records encoded by the store's query, sent on as they are: no record or DTO is built per row.
            encoded = await images.get_many_json(_URL_FIELDS, **filters)
            if encoded is not None:
                # The annotation above is what the OpenAPI document describes; these are its bytes.
                return Response(content=_page_json(encoded), media_type="application/json")  # type: ignore[arg-type]
            page = await images.get_many(**filters)
        except InvalidImageCursorError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return Response(ImageDTOPage(
            items=ImageDTO.many(page.items), offset=page.offset, limit=page.limit, total=page.total,
            next_cursor=page.next_cursor,
        ))

    @get("/i/{image_name:str}", summary="One image's record", middleware=[cached_responses])
    async def get_image(self, images: Injected[ImagesService], image_name: FromPath[str]) -> ImageDTO:
        try:
            return ImageDTO.of(await images.get(image_name))
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None

    async def _file(self, images: Injected[ImagesService], image_name: str, *, thumbnail: bool) -> Response[bytes]:
        try:
            data = await images.read_file(image_name, thumbnail=thumbnail)
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None
        return Response(
            content=data, media_type="image/webp" if thumbnail else "image/png", headers=dict(_FILE_HEADERS)
        )

    # No media_type here: Litestar sends a handler's errors with its media type too (a JSON 404 as image/png).
    @get("/i/{image_name:str}/full", summary="The full-size image (PNG)")
    async def get_image_full(self, images: Injected[ImagesService], image_name: FromPath[str]) -> Response[bytes]:
        return await self._file(images, image_name, thumbnail=False)

    @get("/i/{image_name:str}/thumbnail", summary="The thumbnail (WebP, longest side 256)")
    async def get_image_thumbnail(self, images: Injected[ImagesService], image_name: FromPath[str]) -> Response[bytes]:
        return await self._file(images, image_name, thumbnail=True)

    async def _embedded(self, images: Injected[ImagesService], image_name: str, field: str) -> Response[bytes]:
        try:
            embedded = await images.embedded(image_name)
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None
        text: str | None = getattr(embedded, field)
        # The JSON text exactly as it was saved (or null): never re-parsed against today's models.
        return Response(content=(text if text is not None else "null").encode(), media_type="application/json")

    @get("/i/{image_name:str}/metadata", summary="The generation metadata embedded in the image (JSON or null)")
    async def get_image_metadata(self, images: Injected[ImagesService], image_name: FromPath[str]) -> Response[bytes]:
        return await self._embedded(images, image_name, "metadata")

    @get("/i/{image_name:str}/workflow", summary="The workflow and graph embedded in the image, as strings (InvokeAI)")
    async def get_image_workflow(self, images: Injected[ImagesService], image_name: FromPath[str]) -> WorkflowAndGraph:
        try:
            embedded = await images.embedded(image_name)
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None
        return WorkflowAndGraph(workflow=embedded.workflow, graph=embedded.graph)

    @get("/i/{image_name:str}/graph", summary="The graph that made the image, as saved (JSON or null)")
    async def get_image_graph(self, images: Injected[ImagesService], image_name: FromPath[str]) -> Response[bytes]:
        return await self._embedded(images, image_name, "graph")

    @patch("/i/{image_name:str}", summary="Change an image's category, intermediate flag or star")
    async def update_image(
        self, images: Injected[ImagesService], image_name: FromPath[str], data: JSONBody[ImageRecordChanges]
    ) -> ImageDTO:
        try:
            return ImageDTO.of(await images.update(image_name, data))
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None

    @delete("/i/{image_name:str}", summary="Delete an image, record and files", status_code=200)
    async def delete_image(self, images: Injected[ImagesService], image_name: FromPath[str]) -> DeleteImagesResult:
        try:
            await images.delete(image_name)
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None
        return DeleteImagesResult(deleted_images=[image_name])

    @delete("/intermediates", summary="Delete every intermediate image", status_code=200)
    async def delete_intermediates(self, images: Injected[ImagesService]) -> DeleteImagesResult:
        return DeleteImagesResult(deleted_images=await images.delete_intermediates())

    @post("/delete", summary="Delete a list of images", status_code=200)
    async def delete_images(
        self, images: Injected[ImagesService], data: JSONBody[DeleteImagesRequest]
    ) -> DeleteImagesResult:
        return DeleteImagesResult(deleted_images=await images.delete_many(data.image_names))

    @post(
        "/i/{image_name:str}/replay",
        status_code=200,
        summary="Enqueue the image's graph (and workflow) again; says first what differs now from when it was made",
        description="With dry_run=true nothing is enqueued: the answer lists only the differences (a pack missing "
        "or at another version, a node type no pack registers, a model missing or whose files changed). Otherwise "
        "the graph is enqueued as a batch of one item, and the answer lists the differences with the batch. A graph "
        "that cannot run here any more is refused with 409, naming why.",
    )
    async def replay_image(
        self,
        image_replay: Injected[ImageReplay],
        image_name: FromPath[str],
        dry_run: FromQuery[bool] = False,
        queue_id: Annotated[str, QueryParameter(min_length=1, max_length=200)] = "default",
        prepend: FromQuery[bool] = False,
    ) -> ReplayResult:
        images = image_replay.images
        ensure_available(images)
        try:
            embedded = await images.embedded(image_name)
        except ImageNotFoundError as exc:
            raise _not_found(exc) from None
        try:
            plan = await plan_replay(image_name, embedded, image_replay.manifest)
        except NothingToReplayError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        result = ReplayResult(image_name=image_name, dry_run=dry_run, differences=plan.differences,
                              has_manifest=plan.manifest is not None)
        if dry_run:
            return result
        queue = image_replay.queue
        ensure_available(queue)
        differences = [d.model_dump(mode="json") for d in plan.differences]
        try:
            batch = Batch(graph=plan.graph, workflow=plan.workflow, origin=f"replay:{image_name}"[:200])
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=f"the image's graph cannot be enqueued: {exc}",
                                extra={"differences": differences}) from None
        try:
            result.enqueued = await queue.enqueue_batch(queue_id, batch, prepend=prepend)
        except BatchError as exc:
            why = "; ".join(d.message for d in plan.differences)
            status = exc.status_code if exc.status_code == 413 else 409
            raise HTTPException(
                status_code=status,
                detail=f"the graph of image {image_name!r} cannot run on this server now: {exc.message}"
                + (f" (what differs: {why})" if why else ""),
                extra={"errors": exc.errors, "differences": differences},
            ) from None
        logger.info("Replaying image %s as batch %s (%d difference(s))", image_name, result.enqueued.batch.batch_id,
                    len(plan.differences))
        return result
