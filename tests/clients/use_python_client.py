"""What a client author writes with the client openapi-python-client generates from our document.

Run by tests/test_generated_clients.py in the generator's own environment, against a live server:
``python use_python_client.py <client package parent> <server url> <image.png> <lora.safetensors>``. Prints one
JSON line of what it saw; every answer must parse into the generated models (an undeclared status parses to None).
"""

import io
import json
import sys
import time

sys.path.insert(0, sys.argv[1])

from invoke_host_client import Client
from invoke_host_client.api.images import get_image_dto, upload_image
from invoke_host_client.api.models import get_model_install_job, install_model
from invoke_host_client.api.queue import enqueue_batch, get_queue_item, get_queue_item_results
from invoke_host_client.models import (
    EnqueueBatchBody,
    ErrorResponse,
    ImageUploadForm,
    ModelInstallRequest,
    OutputIntegerOutput,
)
from invoke_host_client.types import File

url, image_path, lora_path = sys.argv[2:5]
client = Client(base_url=url, raise_on_unexpected_status=True)


def wait(what, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


graph = {
    "nodes": {"two": {"id": "two", "type": "integer", "value": 2}, "sum": {"id": "sum", "type": "add", "b": 3}},
    "edges": [{"source": {"node_id": "two", "field": "value"}, "destination": {"node_id": "sum", "field": "a"}}],
}
body = EnqueueBatchBody.from_dict({"batch": {"graph": graph}})
enqueued = enqueue_batch.sync(queue_id="default", client=client, body=body)
(item_id,) = enqueued.item_ids
item = wait("the item's end", lambda: (
    i if (i := get_queue_item.sync(queue_id="default", item_id=item_id, client=client)).status.value
    in ("completed", "failed", "canceled") else None
))
page = get_queue_item_results.sync(queue_id="default", item_id=item_id, client=client, node_id="sum")
(result,) = page.items
assert isinstance(result.output, OutputIntegerOutput), type(result.output)

bad = {"batch": {"graph": {"nodes": {"n": {"id": "n", "type": "add", "a": "two"}}}}}
refused = enqueue_batch.sync(queue_id="default", client=client, body=EnqueueBatchBody.from_dict(bad))
assert isinstance(refused, ErrorResponse), refused

with open(image_path, "rb") as f:
    form = ImageUploadForm(file=File(payload=io.BytesIO(f.read()), file_name="cat.png", mime_type="image/png"))
uploaded = upload_image.sync(client=client, body=form)
fetched = get_image_dto.sync(image_name=uploaded.image_name, client=client)

overrides = ModelInstallRequest.from_dict({"name": "Client Style", "description": "from the generated client"})
job = install_model.sync(client=client, source=lora_path, body=overrides)
done = wait("the install", lambda: (
    j if (j := get_model_install_job.sync(job_id=job.id, client=client)).status.value
    in ("completed", "error", "cancelled") else None
))
print(json.dumps({
    "status": item.status.value,
    "sum": result.output.value,
    "refused": [refused.status_code, refused.detail.split(":")[0], type(refused.extra).__name__,
                [(e.node_id, e.field) for e in refused.extra.errors]],
    "image": [uploaded.image_name == fetched.image_name, fetched.width, fetched.height],
    "install": [done.status.value, done.config_out.name, done.config_out.description, done.config_out.type_],
    "config_class": type(done.config_out).__name__,
}))
