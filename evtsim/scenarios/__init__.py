"""Named scenarios: each a documented function that returns a Trace."""

from .hibernation import FIXES, HibernationParams, hibernation

__all__ = ["FIXES", "HibernationParams", "hibernation"]
