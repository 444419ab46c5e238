"""Probers for the Stable Diffusion family: they read safetensors headers and JSON configs, never weights."""
