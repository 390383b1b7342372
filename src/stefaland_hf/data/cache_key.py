"""Cache keys from the raw files a builder reads.

``datasets`` names a builder's cache folder after its config
(``<cache_dir>/<builder>/<config_id>/<version>/``), and the config holds paths, not contents: a
rebuilt dataset would still serve the old arrays after a raw file was edited, replaced or added to
a basin list. The raw-file builders therefore pass the fingerprint computed here as ``datasets``'
``hash``, the last folder of the cache path (and part of the dataset's ``_fingerprint``), so any
change to what they read builds a new cache.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

__all__ = ["raw_files_fingerprint"]


def raw_files_fingerprint(files: Iterable[str | os.PathLike], extra: Iterable[str] = ()) -> str:
    """16 hex digits over the absolute path, size and modification time (ns) of every file in
    ``files`` (an absent one counts as absent, so creating it changes the key) and the strings in
    ``extra`` (e.g. the basin ids a basin list resolved to)."""
    h = hashlib.sha256()
    for path in sorted({os.path.abspath(p) for p in files}):
        try:
            st = os.stat(path)
            token = f"{path}\0{st.st_size}\0{st.st_mtime_ns}"
        except FileNotFoundError:
            token = f"{path}\0absent"
        h.update(token.encode("utf-8", "surrogateescape") + b"\n")
    for item in extra:
        h.update(b"\1" + str(item).encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]
