"""ccdsl's user data directory: where it is, and that it is private (mode 0700) however it comes to exist.

It holds private keys, the state database and the user's catalogs, so whichever command creates it first — a
``resolve`` writing its cache, ``catalog add``, a ``deploy`` — creates it with mode 0700, and a directory left
readable by an older version is tightened.  Cheap to import: ``ccdsl resolve`` uses it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def location() -> Path:
    """``$CCDSL_DATA_DIR`` if set, else platformdirs' ``user_data_dir("ccdsl")``.  Creates nothing."""
    env = os.environ.get("CCDSL_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ccdsl"))


def ensure() -> Path:
    """The data directory, created with mode 0700 if missing and tightened to 0700 if others can read it."""
    path = location()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    private(path, 0o700)
    return path


def private(path: Path, mode: int) -> None:
    """Take group and other permissions away from ``path`` (a file or directory this user owns)."""
    try:
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, mode)
    except OSError:
        pass  # not ours or not there: whoever uses it reports the real problem


def create_private_file(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 unless it exists, and tighten it if it does."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        private(path, 0o600)
