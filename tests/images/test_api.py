from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import pytest
from litestar.testing import TestClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from tests.images.test_local_file_storage import BAD_NAMES

API = "/api/v1/images"


def make_client(root: Path, **config: object) -> TestClient:  # type: ignore[type-arg]
    host = build_host(
        HostConfig(root=root, **config),  # type: ignore[arg-type]
        [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_image_nodes.plugin],
        entry_points=False,
    )
    assert host.images is not None  # storage and images come from the plugins, wired by the host
    return TestClient(create_app(host=host))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with make_client(tmp_path) as c:
        yield c


def png_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGB", **text: str) -> bytes:
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new(mode, size, "red").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def upload(client: TestClient, data: bytes, **params: str):  # type: ignore[no-untyped-def,type-arg]
    return client.post(f"{API}/upload", files={"file": ("x.png", data, "image/png")}, params=params)


def test_image_nodes_register(tmp_path: Path) -> None:
    host = build_host(HostConfig(root=tmp_path), [invoke_image_nodes.plugin], entry_points=False)
    assert {"image", "blank_image", "img_crop", "img_paste", "img_resize", "img_scale", "img_blur", "img_invert",
            "img_conv", "img_chan", "image_collection", "save_image"} <= set(host.registry.invocations)
    assert not any(r.refused for r in host.registry.plugins)


def test_upload_fetch_update_delete_end_to_end(client: TestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    graph = '{"nodes": {"a": {"type": "gone_in_v9"}},   "edges": []}'
    r = upload(client, png_bytes(invokeai_graph=graph, invokeai_metadata='{"seed": 3}'), image_category="control")
    assert r.status_code == 201, r.text
    dto = r.json()
    name = dto["image_name"]
    assert dto["image_origin"] == "external" and dto["image_category"] == "control"
    assert (dto["width"], dto["height"]) == (64, 48)
    assert dto["image_url"] == f"{API}/i/{name}/full"

    assert client.get(f"{API}/i/{name}").json()["image_name"] == name
    full = client.get(f"{API}/i/{name}/full")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(full.content)).size == (64, 48)
    thumb = client.get(f"{API}/i/{name}/thumbnail")
    assert thumb.headers["content-type"] == "image/webp" and thumb.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"
    assert client.get(f"{API}/i/{name}/graph").text == graph
    assert client.get(f"{API}/i/{name}/metadata").json() == {"seed": 3}
    assert client.get(f"{API}/i/{name}/workflow").json() == {"workflow": None, "graph": graph}

    patched = client.patch(f"{API}/i/{name}", json={"starred": True, "image_category": "mask"})
    assert patched.status_code == 200 and patched.json()["starred"] and patched.json()["image_category"] == "mask"
    assert client.patch(f"{API}/i/{name}", json={"width": 1}).status_code == 400
    assert client.patch(f"{API}/i/{name}", json={"image_category": "wallpaper"}).status_code == 400

    assert client.delete(f"{API}/i/{name}").json() == {"deleted_images": [name]}
    assert client.get(f"{API}/i/{name}").status_code == 404
    assert client.get(f"{API}/i/{name}/full").status_code == 404
    assert client.delete(f"{API}/i/{name}").status_code == 404
    assert [p for p in (tmp_path / "images").rglob("*") if p.is_file()] == []


def test_list_with_filters(client: TestClient) -> None:  # type: ignore[type-arg]
    names = {}
    for category in ("general", "mask", "user", "user"):
        names.setdefault(category, []).append(upload(client, png_bytes(), image_category=category).json()["image_name"])
    inter = upload(client, png_bytes(), is_intermediate="true").json()["image_name"]
    page = client.get(f"{API}/", params={"limit": 2}).json()
    assert set(page) == {"items", "offset", "limit", "total", "next_cursor"}
    assert page["total"] == 5 and len(page["items"]) == 2 and page["items"][0]["image_name"] == inter
    users = client.get(f"{API}/", params={"categories": ["user"], "limit": 10}).json()
    assert {i["image_name"] for i in users["items"]} == set(names["user"]) | {inter}
    both = client.get(f"{API}/", params={"categories": ["mask", "general"]}).json()
    assert both["total"] == 2
    excl = client.get(f"{API}/", params={"exclude_categories": ["user"], "is_intermediate": "false"}).json()
    assert excl["total"] == 2
    asc = client.get(f"{API}/", params={"order_dir": "ASC", "starred_first": "false", "limit": 1}).json()
    assert asc["items"][0]["image_name"] == names["general"][0]
    assert client.get(f"{API}/", params={"image_origin": "internal"}).json()["total"] == 0
    assert client.get(f"{API}/", params={"search_term": inter[:8]}).json()["total"] == 1
    for bad in ({"categories": "wallpaper"}, {"limit": 0}, {"offset": -1}, {"order_dir": "UP"}):
        r = client.get(f"{API}/", params=bad)
        assert r.status_code == 400, (bad, r.text)

    assert client.request("DELETE", f"{API}/intermediates").json() == {"deleted_images": [inter]}
    r = client.post(f"{API}/delete", json={"image_names": [*names["user"], "nope.png"]})
    assert r.json() == {"deleted_images": names["user"]}
    assert client.get(f"{API}/").json()["total"] == 2


def test_not_an_image_is_415(client: TestClient) -> None:  # type: ignore[type-arg]
    r = upload(client, b"this is plain text, not a picture")
    assert r.status_code == 415 and "not an image" in r.json()["detail"]
    truncated = png_bytes((200, 200))[:300]
    r = upload(client, truncated)
    assert r.status_code == 415, r.text
    r = client.post(f"{API}/upload", json={"file": "abc"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = client.post(f"{API}/upload", files={"other": ("x.png", png_bytes(), "image/png")})
    assert r.status_code == 400 and "'file'" in r.json()["detail"]
    assert client.get(f"{API}/").json()["total"] == 0


def test_over_the_size_limit_is_413(tmp_path: Path) -> None:
    with make_client(tmp_path, max_upload_bytes=1000) as client:
        noisy = io.BytesIO()
        Image.effect_noise((300, 300), 100).save(noisy, format="PNG")
        assert len(noisy.getvalue()) > 1000 + 64 * 1024  # refused from its Content-Length, before reading
        r = upload(client, noisy.getvalue())
        assert r.status_code == 413 and "1,000" in r.json()["detail"]
        # Over the limit but within the multipart allowance: refused once the part is read.
        padded = png_bytes((8, 8), padding="x" * 2000)
        assert 1000 < len(padded) < 1000 + 64 * 1024
        r = upload(client, padded)
        assert r.status_code == 413 and "1,000" in r.json()["detail"]
        assert client.get(f"{API}/").json()["total"] == 0
        # At the limit exactly: accepted.
        exact = png_bytes((8, 8), padding="x" * (1000 - len(png_bytes((8, 8), padding=""))))
        assert len(exact) == 1000
        r = upload(client, exact)
        assert r.status_code == 201, r.text
        assert client.get(f"{API}/").json()["total"] == 1


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (the pixel data would never be decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pixels + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    with make_client(tmp_path, max_image_pixels=100 * 100) as client:
        r = upload(client, png_bytes((101, 100)))
        assert r.status_code == 413 and "10,100 pixels" in r.json()["detail"]
        assert upload(client, png_bytes((100, 100))).status_code == 201
        r = upload(client, bomb_png(60_000, 60_000))
        assert r.status_code == 413, r.text
        assert client.get(f"{API}/").json()["total"] == 1


def test_missing_file_is_404_not_500(client: TestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    name = upload(client, png_bytes()).json()["image_name"]
    (tmp_path / "images" / name).unlink()
    (tmp_path / "images" / "thumbnails" / name.replace(".png", ".webp")).unlink()
    for suffix in ("/full", "/thumbnail", "/metadata", "/graph", "/workflow"):
        r = client.get(f"{API}/i/{name}{suffix}")
        assert r.status_code == 404, (suffix, r.status_code)
    assert client.get(f"{API}/i/{name}").status_code == 200  # the record is still there


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n and "\x00" not in n])
@pytest.mark.parametrize("suffix", ["", "/full", "/thumbnail", "/metadata", "/graph"])
def test_bad_names_get_404(client: TestClient, tmp_path: Path, name: str, suffix: str) -> None:  # type: ignore[type-arg]
    (tmp_path / "secret.png").write_bytes(png_bytes())
    path = f"{API}/i/{name}{suffix}"
    r = client.get(path)
    # A client may normalize '..' away and ask for another route; then it simply is not this route.
    assert r.status_code == 404 or r.request.url.path != path
    assert b"\x89PNG" not in r.content


def test_no_images_service_is_503(tmp_path: Path) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path), entry_points=False)) as client:
        r = client.get(f"{API}/")
        assert r.status_code == 503 and "image store" in r.json()["detail"]
