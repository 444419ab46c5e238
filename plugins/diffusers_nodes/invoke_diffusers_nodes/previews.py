"""Small preview images from latents, without the VAE: a linear map of the latent channels (4; FLUX's 16) to RGB."""

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

_FLUX_FACTORS = [
    [-0.0412, 0.0149, 0.0521], [0.0056, 0.0291, 0.0768], [0.0342, -0.0681, -0.0427], [-0.0258, 0.0092, 0.0463],
    [0.0863, 0.0784, 0.0547], [-0.0017, 0.0402, 0.0158], [0.0501, 0.1058, 0.1152], [-0.0209, -0.0218, -0.0329],
    [-0.0314, 0.0083, 0.0896], [0.0851, 0.0665, -0.0472], [-0.0534, 0.0238, -0.0024], [0.0452, -0.0026, 0.0048],
    [0.0892, 0.0831, 0.0881], [-0.1117, -0.0304, -0.0789], [0.0027, -0.0479, -0.0043], [-0.1146, -0.0827, -0.0598],
]


class PreviewMaker:
    """Starts a preview's copy to the CPU without waiting, and turns it into a PIL image later.

    The copy is only waited for after the next step's work was queued on the GPU, so previews do
    not stall the denoising loop.
    """

    def __init__(self, sdxl: bool, device: Any, *, flux: bool = False) -> None:
        import torch

        factors = _FLUX_FACTORS if flux else _SDXL_FACTORS if sdxl else _SD_FACTORS
        self._factors = torch.tensor(factors, device=device)

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
