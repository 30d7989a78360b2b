"""The processor a benchmark ran on, named by model, for the figures it prints."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def device_name(device: str | torch.device = "cpu") -> str:
    """The GPU's name for a CUDA device; else the CPU's model name (from /proc/cpuinfo where there is one), with
    the number of threads torch uses."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {torch.get_num_threads()} torch thread(s)"
