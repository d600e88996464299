"""Moved to ``fhirsvc.drugmodel.units``; this name re-exports it for code written before the move."""

from fhirsvc.drugmodel.units import *  # noqa: F403
from fhirsvc.drugmodel.units import __all__  # noqa: F401
