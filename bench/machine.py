"""What machine a benchmark ran on, in the words its figures depend on: CPU model, cores, vector extensions.

CIFAR forward passes differ about 4x between two "2-core" machines of the same cloud (an AVX-512
Xeon against an AVX2-only EPYC, 2026-12-03): compare benchmark figures only within one machine.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of a /proc/cpuinfo text, or ``"unknown CPU"``."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown CPU"


def vector_extensions(cpuinfo: str) -> str:
    """``"AVX-512"``, ``"AVX2, no AVX-512"`` or ``"no AVX2"``: what TensorFlow's CPU kernels run fastest with."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            break
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"


def describe(cpuinfo: str | None = None, cores: int | None = None) -> str:
    """``"AMD EPYC, 2 CPU cores, AVX2, no AVX-512"``; from this machine's /proc/cpuinfo unless given."""
    if cpuinfo is None:
        cpuinfo = CPUINFO.read_text(errors="replace") if CPUINFO.is_file() else ""
    model = cpu_model(cpuinfo) if cpuinfo else (platform.processor() or "unknown CPU")
    return f"{model}, {cores or os.cpu_count()} CPU cores, {vector_extensions(cpuinfo)}"
