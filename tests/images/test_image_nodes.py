from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from invoke_image_nodes.nodes import (
    BlankImageInvocation,
    ColorField,
    ImageBlurInvocation,
    ImageChannelInvocation,
    ImageCollectionInvocation,
    ImageConvertInvocation,
    ImageCropInvocation,
    ImageInvertInvocation,
    ImageInvocation,
    ImagePasteInvocation,
    ImageResizeInvocation,
    ImageScaleInvocation,
    SaveImageInvocation,
)
from invoke_sdk import BaseInvocation, BaseInvocationOutput, ImageField
from invoke_sdk.images import ImageCategory
from PIL import Image
from pydantic import ValidationError

from invoke_host.images import ImagesService, NodeImages
from invoke_host.loop_bridge import LoopBridge

GRAPH = '{"id": "g1", "nodes": {"n": {"type": "blank_image"}}, "edges": []}'


class Context:
    """A node context of our own: the real images service behind the SDK protocol, nothing else."""

    def __init__(self, service: ImagesService, node: BaseInvocation) -> None:
        # Made on the loop's thread (see run): node calls reach the service on this loop.
        self.images = NodeImages(
            service, LoopBridge(asyncio.get_running_loop()), session_id="session-1", node_id=node.id, graph=GRAPH,
            is_intermediate=node.is_intermediate,
        )
        self.logger = logging.getLogger("test")
        self.config: Mapping[str, Any] = {}


async def run(service: ImagesService, node: BaseInvocation) -> Any:
    # Node code is blocking and runs off the event loop, as the engine runs it.
    output: BaseInvocationOutput = await asyncio.to_thread(node.invoke, Context(service, node))  # type: ignore[arg-type]
    return output


async def stored(service: ImagesService, field: ImageField) -> Image.Image:
    image: Image.Image = await service.get_pil(field.image_name)
    return image


async def test_blank_image_records_session_node_and_graph(service: ImagesService) -> None:
    node = BlankImageInvocation(id="blank", width=40, height=20, mode="RGBA", color=ColorField(r=1, g=2, b=3, a=4))
    out = await run(service, node)
    assert (out.width, out.height) == (40, 20)
    record = await service.get(out.image.image_name)
    assert (record.session_id, record.node_id, record.is_intermediate) == ("session-1", "blank", False)
    assert (await service.embedded(out.image.image_name)).graph == GRAPH
    assert (await stored(service, out.image)).getpixel((0, 0)) == (1, 2, 3, 4)


async def test_intermediate_nodes_save_intermediates(service: ImagesService) -> None:
    out = await run(service, BlankImageInvocation(id="b", width=4, height=4, is_intermediate=True))
    assert (await service.get(out.image.image_name)).is_intermediate


async def blank(service: ImagesService, w: int = 64, h: int = 32, color: tuple[int, ...] = (255, 0, 0)) -> ImageField:
    record = await service.save(Image.new("RGB" if len(color) == 3 else "RGBA", (w, h), color))
    return ImageField(image_name=record.image_name)


async def test_load_crop_resize_scale(service: ImagesService) -> None:
    src = await blank(service)
    loaded = await run(service, ImageInvocation(id="l", image=src))
    assert loaded.image == src and (loaded.width, loaded.height) == (64, 32)
    crop = await run(service, ImageCropInvocation(id="c", image=src, x=60, y=0, width=8, height=8))
    cropped = await stored(service, crop.image)
    assert cropped.size == (8, 8) and cropped.getpixel((0, 0)) == (255, 0, 0, 255) and cropped.getpixel((7, 0))[3] == 0
    resized = await run(service, ImageResizeInvocation(id="r", image=src, width=10, height=30, resample_mode="nearest"))
    assert (resized.width, resized.height) == (10, 30)
    scaled = await run(service, ImageScaleInvocation(id="s", image=src, scale_factor=0.5))
    assert (scaled.width, scaled.height) == (32, 16)
    with pytest.raises(ValidationError):
        ImageResizeInvocation(id="r", image=src, resample_mode="sideways")


async def test_paste_with_mask(service: ImagesService) -> None:
    base = await blank(service, 8, 8, (0, 0, 255))
    top = await blank(service, 4, 4, (255, 0, 0))
    mask_img = Image.new("L", (4, 4), 255)
    mask_img.paste(0, (0, 0, 2, 4))  # left half black: InvokeAI's mask is inverted, so black is where it pastes
    mask = ImageField(image_name=(await service.save(mask_img, image_category=ImageCategory.mask)).image_name)
    out = await run(service, ImagePasteInvocation(id="p", base_image=base, image=top, mask=mask, x=2, y=2))
    pasted = await stored(service, out.image)
    assert pasted.size == (8, 8)
    assert pasted.getpixel((2, 2))[:3] == (255, 0, 0)
    assert pasted.getpixel((5, 2))[:3] == (0, 0, 255)
    grown = await run(service, ImagePasteInvocation(id="p2", base_image=base, image=top, x=6, y=0))
    assert (grown.width, grown.height) == (10, 8)
    cropped = await run(service, ImagePasteInvocation(id="p3", base_image=base, image=top, x=6, y=0, crop=True))
    assert (cropped.width, cropped.height) == (8, 8)


async def test_blur_invert_convert_channel(service: ImagesService) -> None:
    img = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    img.paste((255, 255, 255, 100), (0, 0, 8, 16))
    src = ImageField(image_name=(await service.save(img)).image_name)
    blurred = await stored(service, (await run(service, ImageBlurInvocation(id="b", image=src, radius=2))).image)
    assert 0 < blurred.getpixel((8, 8))[0] < 255
    inverted = await stored(service, (await run(service, ImageInvertInvocation(id="i", image=src))).image)
    assert inverted.getpixel((0, 0)) == (0, 0, 0, 100) and inverted.getpixel((12, 0)) == (255, 255, 255, 255)
    gray = await stored(service, (await run(service, ImageConvertInvocation(id="c", image=src, mode="L"))).image)
    assert gray.mode == "L"
    alpha = await stored(service, (await run(service, ImageChannelInvocation(id="a", image=src, channel="A"))).image)
    assert alpha.mode == "L" and alpha.getpixel((0, 0)) == 100 and alpha.getpixel((12, 0)) == 255
    with pytest.raises(ValidationError):
        ImageConvertInvocation(id="c", image=src, mode="CMYK")


async def test_collection_and_save_image(service: ImagesService) -> None:
    a, b = await blank(service), await blank(service)
    out = await run(service, ImageCollectionInvocation(id="col", collection=[a, b]))
    assert out.collection == [a, b]
    saved = await run(service, SaveImageInvocation(id="save", image=a, metadata={"prompt": "x"}))
    assert saved.image != a
    assert (await service.embedded(saved.image.image_name)).metadata == '{"prompt": "x"}'


async def test_images_interface_refuses_the_event_loop_thread(service: ImagesService) -> None:
    images = NodeImages(service, LoopBridge(asyncio.get_running_loop()), session_id=None, node_id=None)
    with pytest.raises(RuntimeError, match="worker"):
        images.save(Image.new("RGB", (2, 2)))
    with pytest.raises(ValueError):
        await asyncio.to_thread(images.save, Image.new("RGB", (2, 2)), category="wallpaper")
