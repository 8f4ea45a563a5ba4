"""Xen behaviour by release and variant, as a table of rows rather than branches.

Each row describes one hypervisor *as released* (or as patched), with the behaviours evtsim
models that changed over time. The engines read fields; they never compare version strings.
Sources: xen-abi-facts.md sections 2.2, 2.4-2.6, 3 and 6, and the commits named below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .abi import Errno


class ResetRevert(str, Enum):
    """Whether EVTCHNOP_reset on a FIFO domain goes back to 2-level (evtchn_reset)."""

    NEVER = "never"  # 4.4: reset only closes ports
    SELF = "self"  # 4.5-4.6: only when called with dom == DOMID_SELF (400b3bd642)
    ALWAYS = "always"  # 4.7+: any successful reset (546d558a7a)


class Bit7(str, Enum):
    """What domain-create flag bit 7 means in a given tree."""

    UNKNOWN = "unknown"  # sanitise_domain_config rejects it with -EINVAL
    DISABLE_FIFO = "disable_fifo"  # [PATCH v4 1/3] XEN_DOMCTL_CDF_disable_fifo
    EVTCHN_FIFO = "evtchn_fifo"  # [PATCH v5 1/4] XEN_DOMCTL_CDF_evtchn_fifo
    VPMU = "vpmu"  # upstream since 4.16 (dbb948110a): nothing to do with event channels


@dataclass(frozen=True)
class XenVersion:
    """One modelled hypervisor. Field docs say which commit introduced the behaviour."""

    name: str
    description: str
    fifo: bool  # ops 11-13 exist (88910061ec61, 4.4); else they hit the default -ENOSYS
    fifo_compiled_in: bool = True  # CONFIG_EVTCHN_FIFO=n (cfe15a473d, 4.21): -EOPNOTSUPP
    expand_not_fifo: Errno = Errno.EOPNOTSUPP  # -ENOSYS in 4.4-4.7 (a66765eb06, 4.8)
    reset_revert: ResetRevert = ResetRevert.ALWAYS
    reset_continuation: bool = True  # EVTCHNOP_reset_cont, -EBUSY/-EAGAIN (XSA-343/344, 4.15)
    no_control_block_sets_pending: bool = False  # P set on a vCPU without a control block (<=4.16)
    busy_port_skipped: bool = True  # a LINKED free port is not reused (78e24c269b0a, 4.7)
    soft_reset: bool = True  # XEN_DOMCTL_soft_reset exists (1a043f9dc7, 4.7)
    bit7: Bit7 = Bit7.VPMU
    qemu: bool = False  # QEMU's Xen-on-KVM emulation (hw/i386/kvm/xen_evtchn.c): ops 11-13 -ENOSYS

    @property
    def fifo_available(self) -> bool:
        """Whether a domain on this hypervisor can switch to FIFO at all."""
        return self.fifo and self.fifo_compiled_in and not self.qemu


_ROWS = (
    XenVersion("4.3", "Xen 4.3 and older: 2-level only; ops 11-13 are unknown", fifo=False,
               expand_not_fifo=Errno.ENOSYS, reset_revert=ResetRevert.NEVER,
               reset_continuation=False, no_control_block_sets_pending=True,
               busy_port_skipped=False, soft_reset=False, bit7=Bit7.UNKNOWN),
    XenVersion("4.4", "Xen 4.4: FIFO arrives; reset keeps FIFO mode", fifo=True,
               expand_not_fifo=Errno.ENOSYS, reset_revert=ResetRevert.NEVER,
               reset_continuation=False, no_control_block_sets_pending=True,
               busy_port_skipped=False, soft_reset=False, bit7=Bit7.UNKNOWN),
    XenVersion("4.5", "Xen 4.5-4.6: reset with DOMID_SELF reverts to 2-level", fifo=True,
               expand_not_fifo=Errno.ENOSYS, reset_revert=ResetRevert.SELF,
               reset_continuation=False, no_control_block_sets_pending=True,
               busy_port_skipped=False, soft_reset=False, bit7=Bit7.UNKNOWN),
    XenVersion("4.7", "Xen 4.7: any reset reverts; soft reset; busy ports skipped", fifo=True,
               expand_not_fifo=Errno.ENOSYS, reset_continuation=False,
               no_control_block_sets_pending=True, bit7=Bit7.UNKNOWN),
    XenVersion("4.8", "Xen 4.8-4.16: expand_array before FIFO is -EOPNOTSUPP", fifo=True,
               reset_continuation=False, no_control_block_sets_pending=True, bit7=Bit7.UNKNOWN),
    XenVersion("4.17", "Xen 4.17-4.20: no P bit for a vCPU without a control block", fifo=True),
    XenVersion("master", "Xen master (4.21+): today's upstream behaviour", fifo=True),
    XenVersion("patch-v4", "4.15-dev with [PATCH v4] XEN_DOMCTL_CDF_disable_fifo", fifo=True,
               no_control_block_sets_pending=True, bit7=Bit7.DISABLE_FIFO),
    XenVersion("patch-v5", "4.15-dev with [PATCH v5] XEN_DOMCTL_CDF_evtchn_fifo", fifo=True,
               no_control_block_sets_pending=True, bit7=Bit7.EVTCHN_FIFO),
    XenVersion("fifo-off", "Xen master built with CONFIG_EVTCHN_FIFO=n", fifo=True,
               fifo_compiled_in=False),
    XenVersion("qemu", "QEMU's Xen emulation on KVM: 2-level only", fifo=False, qemu=True,
               reset_continuation=False),
)

XEN_VERSIONS: dict[str, XenVersion] = {row.name: row for row in _ROWS}

# Release -> the row that behaves like it (rows are eras: "4.8" covers 4.8 to 4.16).
_ERAS = ((4, 17, "4.17"), (4, 8, "4.8"), (4, 7, "4.7"), (4, 5, "4.5"), (4, 4, "4.4"))


def xen_version(name: str | XenVersion) -> XenVersion:
    """The row for ``name``: a row name, or any release like "4.6" mapped to its era."""
    if isinstance(name, XenVersion):
        return name
    if name in XEN_VERSIONS:
        return XEN_VERSIONS[name]
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", str(name))
    if not match:
        raise ValueError(f"unknown Xen version {name!r}; choose from {', '.join(XEN_VERSIONS)}")
    release = (int(match[1]), int(match[2]))
    if release >= (4, 21):
        return XEN_VERSIONS["master"]
    for major, minor, row in _ERAS:
        if release >= (major, minor):
            return XEN_VERSIONS[row]
    return XEN_VERSIONS["4.3"]
