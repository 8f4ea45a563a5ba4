"""evtsim: faithful, explorable models of Xen's event channels (2-level and FIFO).

The core (this package, minus ``plots`` and ``widgets``) uses only the standard library.
Start with ``Xen()``, create a domain, and call ``domain.evtchn_op(cmd, arg)``; let time
pass with ``xen.advance(ns)``; raise a VIRQ from Xen's side with
``xen.send_guest_vcpu_virq(vcpu, VIRQ_TIMER)``; read what the guest sees with
``domain.is_pending(port)``. ``__all__`` lists every public name: Xen's vocabulary
(``evtsim.abi``), the machine, the guest kernel and consumers, the toolstack and scenarios.
"""

from . import abi
from .abi import *  # noqa: F403  the headers' vocabulary: EVTCHNOP_*, SCHEDOP_*, ECS_*, VIRQ_*, structs
from .faults import AllocSite
from .guest import Consumer, FifoConsumer, TwoLevelConsumer
from .guest.kernel import FallbackPolicy, Kernel, KernelConfig
from .layouts import Field, StructLayout
from .memory import ControlBlockView, Recording, SharedInfoView, StructView, Structure, VcpuInfoView
from .scenario import Step, run
from .scenarios import SCENARIOS, run_scenario
from .scenarios.common import boot, create_guest, traffic
from .snapshot import snapshot_domain
from .toolstack import xl_create
from .trace import VERDICTS
from .vcpu import Vcpu
from .versions import XEN_VERSIONS, XenVersion, xen_version
from .xen import SHARED_INFO_GFN, Domain, DomctlError, Xen

__version__ = "0.1.0"

__all__ = [
    *abi.__all__,
    "AllocSite", "Consumer", "ControlBlockView", "Domain", "DomctlError", "FallbackPolicy", "Field",
    "FifoConsumer", "Kernel", "KernelConfig", "Recording", "SCENARIOS", "SHARED_INFO_GFN", "VERDICTS", "SharedInfoView",
    "Step", "StructLayout", "StructView", "Structure", "TwoLevelConsumer", "Vcpu", "VcpuInfoView", "XEN_VERSIONS",
    "Xen", "XenVersion", "boot", "create_guest", "run", "run_scenario", "snapshot_domain", "traffic", "xen_version",
    "xl_create",
]
