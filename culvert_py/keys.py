"""Temporary alias of :mod:`culvert_py.layout` while the last callers move."""

from culvert_py.layout import *  # noqa: F403
from culvert_py.layout import MAX_KEY_BYTES, _shown  # noqa: F401
