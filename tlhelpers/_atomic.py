"""Write files so that they appear whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    `suffix` overrides the temporary file's ending (Keras wants ".weights.h5", not ".h5").

    Example:
        >>> with atomic_path("features.npz") as tmp:
        ...     np.savez(tmp, x=x)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path: str | Path, obj) -> None:
    """Write `obj` as JSON to `path`, whole or not at all."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj))
