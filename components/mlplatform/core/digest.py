"""Stable digests of configuration documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def checksum(*documents: Any) -> str:
    """Stable digest of config documents; put on a pod template so a config change rolls the pod."""
    text = json.dumps(documents, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
