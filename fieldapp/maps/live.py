"""The live map files, opened for this process: each request finds the current basemap and address index here,
and a file swapped in by an import is picked up by the next request (a stat, no restart)."""
import threading

from flask import current_app

from . import addresses, basemap, files

_lock = threading.Lock()


def current_basemap(app=None):
    """The live Basemap, or None when no map has been imported."""
    app = app or current_app
    path = files.live_path(files.BASEMAP, app)
    key = files.file_key(path)
    held = app.extensions.get("fieldapp.basemap")
    if held and held[0] == key:
        return held[1]
    with _lock:
        held = app.extensions.get("fieldapp.basemap")
        if held and held[0] == key:
            return held[1]
        # The old Basemap is left to the garbage collector: a request may still be reading a tile from it.
        opened = basemap.Basemap(path) if key else None
        app.extensions["fieldapp.basemap"] = (key, opened)
        return opened


def current_index(app=None):
    """This thread's live AddressIndex, or None when no addresses have been imported."""
    app = app or current_app
    path = files.live_path(files.ADDRESSES, app)
    key = files.file_key(path)
    return addresses.open_index(path, key) if key else None
