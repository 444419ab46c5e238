"""Small preview images from latents, without the VAE: a linear map of the 4 latent channels to RGB."""

from __future__ import annotations

from typing import Any

__all__ = ["PreviewMaker"]

# Approximations fitted by the community (InvokeAI, ComfyUI use the same factors).
_SD_FACTORS = [
    [0.3444, 0.1385, 0.0670], [0.1247, 0.4027, 0.1494], [-0.3192, 0.2513, 0.2103], [-0.1307, -0.1874, -0.7445]
]
_SDXL_FACTORS = [
    [0.3816, 0.4930, 0.5320], [-0.3753, 0.1631, 0.1739], [0.1770, 0.3588, -0.2048], [-0.4350, -0.2644, -0.4289]
]


class PreviewMaker:
    """Starts a preview's copy to the CPU without waiting, and turns it into a PIL image later.

    The copy is only waited for after the next step's work was queued on the GPU, so previews do
    not stall the denoising loop.
    """

    def __init__(self, sdxl: bool, device: Any) -> None:
        import torch

        self._factors = torch.tensor(_SDXL_FACTORS if sdxl else _SD_FACTORS, device=device)

    def start(self, latents: Any) -> Any:
        import torch

        with torch.no_grad():
            rgb = torch.einsum("chw,cr->hwr", latents[0].to(self._factors.dtype), self._factors)
            rgb = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8)
            if rgb.device.type == "cuda":
                host = rgb.to("cpu", non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                return host, done
            return rgb.cpu(), None

    @staticmethod
    def finish(pending: Any) -> Any:
        from PIL import Image

        host, done = pending
        if done is not None:
            done.synchronize()
        return Image.fromarray(host.numpy(), mode="RGB")
