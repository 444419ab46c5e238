from __future__ import annotations

from pathlib import Path

from invoke_sd_probers import plugin as probers_plugin
from invoke_sqlite_storage import plugin as storage_plugin
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.models import model_files as mf
from tests.waiting import wait_until


def test_models_api_round_trip(tmp_path: Path) -> None:
    lora = mf.write_lora_kohya(tmp_path / "src" / "style.safetensors", "sdxl")
    app = create_app(HostConfig(root=tmp_path / "root"), [probers_plugin, storage_plugin], entry_points=False)
    with TestClient(app) as client:
        bad = client.post("/api/v2/models/install", params={"source": "ftp://x/y"})
        assert bad.status_code == 422 and "http" in bad.json()["detail"]
        job = client.post("/api/v2/models/install", params={"source": str(lora)}, json={"name": "Style"}).json()
        url = f"/api/v2/models/install/{job['id']}"
        wait_until(lambda: client.get(url).json()["status"] in {"completed", "error"}, "the install to finish",
                   timeout=60)
        job = client.get(url).json()
        assert job["status"] == "completed", job
        key = job["config_out"]["key"]
        listed = client.get("/api/v2/models/", params={"type": "lora", "base": "sdxl"}).json()["models"]
        assert [m["key"] for m in listed] == [key]
        assert (
            client.get("/api/v2/models/get_by_attrs", params={"name": "Style", "type": "lora", "base": "sdxl"}).json()[
                "key"
            ]
            == key
        )
        assert client.patch(f"/api/v2/models/i/{key}", json={"description": "d"}).json()["description"] == "d"
        assert client.patch(f"/api/v2/models/i/{key}", json={"base": "nope"}).status_code == 400
        assert client.patch(f"/api/v2/models/i/{key}", content=b"[1]").status_code == 400
        scan = client.get("/api/v2/models/scan_folder", params={"scan_path": str(lora.parent)}).json()
        assert scan == [{"path": str(lora), "is_installed": False}]  # copied into the models dir, not in place
        assert client.delete("/api/v2/models/install").json()["pruned"] == 1
        assert client.delete(f"/api/v2/models/i/{key}").status_code == 200
        missing = client.get(f"/api/v2/models/i/{key}")
        assert missing.status_code == 404 and key in missing.json()["detail"]
        assert client.get("/api/v2/models/install/99").status_code == 404
        schema = client.get("/schema/openapi.json").json()
        assert "ModelConfig.main.checkpoint" in schema["components"]["schemas"]
        assert "AnyModelConfig" in schema["components"]["schemas"]
