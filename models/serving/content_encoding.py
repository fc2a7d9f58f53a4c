"""Request bodies sent with ``Content-Encoding: gzip`` or ``deflate``, as Triton accepts them
(tritonclient's ``request_compression_algorithm``).

Inflation is bounded: a small compressed body cannot expand past MAX_BODY_BYTES.
"""

from __future__ import annotations

import zlib

from serving.errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding

_WBITS = {
    b"gzip": 16 + zlib.MAX_WBITS,
    b"x-gzip": 16 + zlib.MAX_WBITS,
    b"deflate": zlib.MAX_WBITS,  # HTTP's "deflate" is the zlib format
}


def decode_body(body: bytes, encoding: bytes, limit: int) -> bytes:
    """Inflate ``body`` per its Content-Encoding value; raise a ServingError when impossible."""
    name = encoding.strip().lower()
    if name in (b"", b"identity"):
        return body
    wbits = _WBITS.get(name)
    if wbits is None:
        raise UnsupportedEncoding(encoding.decode("latin-1"))
    label = name.decode()
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(
            f"the body is not valid {label} data ({exc}); send it compressed as its "
            "Content-Encoding says, or uncompressed without that header"
        ) from None
    if len(out) > limit:
        raise PayloadTooLarge(None, limit)
    if not inflater.eof:
        raise InvalidInput(f"the {label} body is truncated: its compressed stream does not end")
    if inflater.unused_data:
        raise InvalidInput(
            f"the {label} body has {len(inflater.unused_data)} bytes after the end of its "
            "compressed stream"
        )
    return out
