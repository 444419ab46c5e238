"""InvokeAI's constants."""

LATENT_SCALE_FACTOR = 8
"""Image pixels per latent pixel (SD and FLUX VAEs)."""

IMAGE_MODES = ("L", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F")
