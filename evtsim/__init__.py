"""evtsim: faithful, explorable models of Xen's event channels (2-level and FIFO).

The core (this package, minus ``plots`` and ``widgets``) uses only the standard library.
Start with ``Xen()``, create a domain, and call ``domain.evtchn_op(cmd, arg)``.
"""

from .abi import *  # noqa: F401,F403  the header's vocabulary: EVTCHNOP_*, ECS_*, structs
from .abi import Errno, errno_name
from .faults import AllocSite
from .memory import Recording, Structure
from .versions import XEN_VERSIONS, XenVersion, xen_version
from .xen import Domain, DomctlError, Vcpu, Xen

__version__ = "0.1.0"
