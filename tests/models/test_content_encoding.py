"""Compressed request bodies (Content-Encoding gzip/deflate): serving/content_encoding.py and the
live server."""

from __future__ import annotations

import gzip
import zlib

import httpx
import orjson
import pytest

from serving.content_encoding import decode_body
from serving.errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding

BODY = orjson.dumps({"instances": [[0.5] * 30] * 3})


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        (b"gzip", gzip.compress),
        (b"GZip ", gzip.compress),
        (b"x-gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"identity", lambda b: b),
    ],
)
def test_bodies_inflate_per_their_content_encoding(encoding, compress):
    assert decode_body(compress(BODY), encoding, 1 << 20) == BODY


@pytest.mark.parametrize(
    ("body", "encoding", "error", "fragment"),
    [
        (BODY, b"br", UnsupportedEncoding, "Content-Encoding 'br' is not supported"),
        (BODY, b"gzip, deflate", UnsupportedEncoding, "'gzip, deflate'"),
        (BODY, b"gzip", InvalidInput, "not valid gzip data"),
        (gzip.compress(BODY)[:-12], b"gzip", InvalidInput, "truncated"),
        (zlib.compress(BODY) + b"xx", b"deflate", InvalidInput, "2 bytes after the end"),
        (gzip.compress(b"[" + b"0," * 100_000 + b"0]"), b"gzip", PayloadTooLarge, "65536"),
    ],
)
def test_bad_or_oversized_compressed_bodies_are_refused(body, encoding, error, fragment):
    with pytest.raises(error) as err:
        decode_body(body, encoding, 65536)
    assert fragment in err.value.message, err.value.message
    assert 400 <= err.value.status < 500


def test_server_inflates_gzip_and_refuses_unknown_encodings(server1):
    url = f"{server1.url}/predict"
    r = httpx.post(url, content=gzip.compress(BODY), headers={"content-encoding": "gzip"})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    r = httpx.post(url, content=BODY, headers={"content-encoding": "br"})
    assert r.status_code == 415 and "'br' is not supported" in r.json()["error"]
    # 1.3 MB of JSON zipped into ~2 kB: refused by the inflated size, not the wire size.
    bomb = gzip.compress(orjson.dumps({"instances": [[0.5] * 30] * 10_000}))
    assert len(bomb) < 65536
    r = httpx.post(url, content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413 and "the limit is 65536 bytes" in r.json()["error"]
