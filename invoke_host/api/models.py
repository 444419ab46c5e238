"""``/api/v2/models``: records, installs and folder scans."""

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.records import DuplicateModelError, UnknownModelKeyError
from litestar import Controller, Request, delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException, ValidationException
from litestar.params import FromPath, FromQuery, QueryParameter
from pydantic import ValidationError

from invoke_host.api.injected import Injected
from invoke_host.models.manager import ModelManager, ModelsUnavailableError
from invoke_host.models.record_paths import UnsafeDeleteError
from invoke_host.models.user_paths import expand_user_path

__all__ = ["ModelsController"]

_Handler = Callable[..., Coroutine[Any, Any, Any]]


@asynccontextmanager
async def _errors() -> AsyncIterator[None]:
    """Record-store and install errors as 4xx answers a person can act on."""
    try:
        yield
    except UnknownModelKeyError as exc:
        raise NotFoundException(str(exc)) from exc
    except DuplicateModelError as exc:
        raise ClientException(str(exc), status_code=409, extra={"existing": exc.existing}) from exc
    except UnsafeDeleteError as exc:
        raise ClientException(str(exc), status_code=409) from exc
    except ModelsUnavailableError as exc:
        raise ServiceUnavailableException(str(exc)) from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValidationException(f"the change makes the model config invalid ({problems})") from exc
    except ValueError as exc:
        # Well formed, but the values cannot be used (a source that resolves to nothing, a path that is no folder).
        raise ClientException(str(exc), status_code=422) from exc


async def _json_object(request: Request[Any, Any, Any], *, optional: bool) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise ValidationException("a JSON object body is required")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationException(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationException("the body must be a JSON object")
    return body


def _refuse_url_credentials(source: str) -> None:
    """A source is stored in the job and the model record, and logged: it must not carry a password."""
    parts = urlsplit(source.strip())
    if parts.scheme in ("http", "https") and (parts.username is not None or parts.password is not None):
        raise ValidationException(
            "the source URL carries a user name or password, and a source is stored and shown: give the URL "
            'without them and send the credential as {"access_token": "..."} in the JSON body'
        )


def _dump(config: Any) -> dict[str, Any]:
    return dict(config.model_dump(mode="json"))


class ModelsController(Controller):
    path = "/models"
    tags = ["models"]

    @get("/", summary="List installed models, optionally filtered")
    async def list_models(
        self,
        models: Injected[ModelManager],
        base: FromQuery[BaseModelType | None] = None,
        model_type: Annotated[ModelType | None, QueryParameter(name="type")] = None,
        name: FromQuery[str | None] = None,
        model_format: Annotated[ModelFormat | None, QueryParameter(name="format")] = None,
    ) -> dict[str, Any]:
        async with _errors():
            found = await models.store.search(name=name, base=base, type=model_type, format=model_format)
        return {"models": [_dump(c) for c in found]}

    @get("/get_by_attrs", summary="The model with this name, type and base")
    async def get_by_attrs(
        self,
        models: Injected[ModelManager],
        name: FromQuery[str],
        base: FromQuery[BaseModelType],
        model_type: Annotated[ModelType, QueryParameter(name="type")],
    ) -> dict[str, Any]:
        async with _errors():
            found = await models.store.search(name=name, base=base, type=model_type)
        if not found:
            raise NotFoundException(f"no {base.value} {model_type.value} model named {name!r} is installed")
        return _dump(found[0])

    @get("/i/{key:str}", summary="One model's config")
    async def get_model(self, models: Injected[ModelManager], key: FromPath[str]) -> dict[str, Any]:
        async with _errors():
            return _dump(await models.store.get(key))

    @patch("/i/{key:str}", summary="Change some fields of a model's config (a sparse update; not key, path, inplace)")
    async def update_model(
        self, request: Request[Any, Any, Any], models: Injected[ModelManager], key: FromPath[str]
    ) -> dict[str, Any]:
        changes = await _json_object(request, optional=False)
        async with _errors():
            return _dump(await models.update(key, changes))

    @delete(
        "/i/{key:str}",
        summary="Delete a model: the files the host placed go too; a model registered in place is only unregistered",
        status_code=200,
    )
    async def delete_model(
        self, models: Injected[ModelManager], key: FromPath[str], unregister: FromQuery[bool] = False
    ) -> dict[str, Any]:
        async with _errors():
            config = await (models.unregister(key) if unregister else models.delete(key))
        return _dump(config)

    @post(
        "/install",
        summary="Install a model from a path, an http(s) URL or a Hugging Face repo id",
        description=(
            "The optional JSON object body holds config overrides (name, base, prediction_type ...) and, under the "
            "reserved key `access_token`, the credential for a gated repo or a private URL. The token is sent as "
            "`Authorization: Bearer` to the source (dropped on a redirect to another origin) and is never stored, "
            "logged or returned. It is refused as a query parameter, where access logs would keep it."
        ),
        status_code=201,
    )
    async def install_model(
        self,
        request: Request[Any, Any, Any],
        models: Injected[ModelManager],
        source: FromQuery[str],
        inplace: FromQuery[bool] = False,
        variant: FromQuery[str | None] = None,
        subfolder: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        if "access_token" in request.query_params:
            raise ValidationException(
                "access_token is not accepted in the URL, where access logs keep it: send it in the JSON body, "
                'as {"access_token": "..."} next to any config overrides'
            )
        _refuse_url_credentials(source)
        overrides = await _json_object(request, optional=True)
        access_token = overrides.pop("access_token", None)
        if access_token is not None and (not isinstance(access_token, str) or not access_token.strip()):
            raise ValidationException("access_token must be a non-empty string")
        async with _errors():
            job = models.installer.import_model(
                source,
                inplace=inplace,
                variant=variant,
                subfolder=subfolder,
                config=overrides,
                access_token=access_token,
            )
        return job.model_dump(mode="json")

    @get("/install", summary="Every install job")
    async def list_jobs(self, models: Injected[ModelManager]) -> list[dict[str, Any]]:
        async with _errors():
            jobs = models.installer.jobs.values()
        return [j.model_dump(mode="json") for j in jobs]

    @get("/install/{job_id:int}", summary="One install job")
    async def get_job(self, models: Injected[ModelManager], job_id: FromPath[int]) -> dict[str, Any]:
        async with _errors():
            installer = models.installer
        if job_id not in installer.jobs:
            raise NotFoundException(f"no install job with id {job_id}")
        return installer.jobs[job_id].model_dump(mode="json")

    @delete("/install/{job_id:int}", summary="Cancel an install job", status_code=200)
    async def cancel_job(self, models: Injected[ModelManager], job_id: FromPath[int]) -> dict[str, Any]:
        async with _errors():
            installer = models.installer
        if job_id not in installer.jobs:
            raise NotFoundException(f"no install job with id {job_id}")
        return installer.cancel_job(job_id).model_dump(mode="json")

    @delete("/install", summary="Forget finished install jobs", status_code=200)
    async def prune_jobs(self, models: Injected[ModelManager]) -> dict[str, int]:
        async with _errors():
            return {"pruned": models.installer.prune_jobs()}

    @get("/scan_folder", summary="Models in a folder, and whether each is installed")
    async def scan_folder(self, models: Injected[ModelManager], scan_path: FromQuery[str]) -> list[dict[str, Any]]:
        async with _errors():
            return await models.scan_folder(expand_user_path(scan_path))
