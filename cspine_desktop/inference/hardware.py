"""What this machine offers for inference: CPU features, cores, a stable fingerprint."""

from __future__ import annotations

import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """(CPU model name, feature flags) from /proc/cpuinfo; ("", ∅) where it is unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    name, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if name and flags:
            break
    return name or platform.processor() or platform.machine(), flags


def has_bf16() -> bool:
    """The CPU computes bfloat16 natively (AMX or AVX-512 BF16)."""
    return any(f in cpu_info()[1] for f in BF16_FLAGS)


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:  # psutil is optional at run time
        n = None
    return max(1, n or (os.cpu_count() or 2) // 2 or 1)


def fingerprint(*extra: str) -> str:
    """Short hash that changes when the CPU, core count, OS or ``extra`` (versions, GPU) do."""
    name, flags = cpu_info()
    blob = "|".join(
        [name, str(os.cpu_count()), platform.system(), platform.machine(), *sorted(flags), *extra]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
