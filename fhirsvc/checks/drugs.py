"""Moved to ``fhirsvc.drugmodel.profile`` (the drug model every face reads); this name re-exports it for code
written before the move."""

from fhirsvc.drugmodel.profile import *  # noqa: F403
from fhirsvc.drugmodel.profile import __all__  # noqa: F401
