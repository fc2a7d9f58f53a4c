"""Kubernetes resource quantities ("500m", "2", "512Mi") parsed into numbers for comparisons."""

from __future__ import annotations

import re

_CPU = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_FACTOR = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def cpu_cores(quantity: str) -> float:
    """CPU quantity in cores: "250m" -> 0.25, "2" -> 2.0. Raises ValueError on anything else."""
    match = _CPU.match(str(quantity))
    if match is None:
        raise ValueError(
            f"{quantity!r} is not a CPU quantity; use cores ('1', '0.5') or millicores ('500m')"
        )
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_bytes(quantity: str) -> int:
    """Memory quantity in bytes: "512Mi" -> 536870912. Raises ValueError on anything else."""
    match = _MEMORY.match(str(quantity))
    if match is None:
        raise ValueError(
            f"{quantity!r} is not a memory quantity; use a number with a binary suffix such as "
            "'512Mi' or '2Gi' (Ki, Mi, Gi, Ti; decimal k, M, G, T also work)"
        )
    return int(float(match.group(1)) * _MEMORY_FACTOR[match.group(2)])
