"""Where the map's live files are, and how a new one replaces the old.

An import builds its file beside the live one (`basemap.building.pmtiles`),
checks it, and only then renames it over the live file. A rename within one
folder is atomic: a reader sees the old file or the new one, never half of
either, and a process that has the old file open keeps reading it until it
notices the new one (by its inode). A build that fails leaves the live file
as it was, so the old map keeps serving.
"""
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from flask import current_app

BASEMAP = "basemap.pmtiles"
ADDRESSES = "addresses.db"


class MapImportError(Exception):
    """An import refused: the message says why, for the person at the terminal; nothing was changed."""


def map_dir(app=None):
    """The folder of the live map files (MAP_DIR, by default instance/map)."""
    app = app or current_app
    return Path(app.config.get("MAP_DIR") or Path(app.instance_path) / "map")


def live_path(name, app=None):
    """The path of a live map file: live_path(BASEMAP)."""
    return map_dir(app) / name


@contextmanager
def one_import_at_a_time(folder):
    """Hold the map folder's lock while an import builds, so two imports never swap in half of each other."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".import.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MapImportError("Another map import is running; wait for it to finish.") from None
        yield


def building_path(live):
    """Where the new copy of `live` is built: beside it, in the same folder, so the rename is atomic.

    The suffix stays last: tippecanoe chooses what it writes by the output's extension.
    """
    return live.with_name(f"{live.stem}.building{live.suffix}")


def swap_in(built, live):
    """Make `built` the live file in one atomic rename (it must already have been checked)."""
    os.replace(built, live)
    # The rename is durable once the folder's entry is on disk.
    fd = os.open(live.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(path):
    """Remove a half-built file, if there is one."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def file_key(path):
    """What identifies one version of a live file: its inode and modification time; None when there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
