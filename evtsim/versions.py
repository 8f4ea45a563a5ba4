"""Xen behaviour by release and variant, as a table of rows rather than branches.

Each row describes one hypervisor *as released* at its tag (or as patched, or emulated), with
the behaviours evtsim models that changed over time. The engines read fields; they never
compare version strings or ask which product they run on. Every field names the commit (and
the first release tag containing it) or the QEMU function it mirrors. A point release maps to
its x.y.0 row: stable backports are variants (``4.14-xsa``).
Sources: xen-abi-facts.md sections 1.6, 2.2, 2.4-2.6, 3, 5 and 6, Xen's sources at the
``RELEASE-x.y.0`` tags, and QEMU's hw/i386/kvm/xen_evtchn.c.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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
    """One modelled hypervisor. Each field is one behaviour; its comment gives the source.

    The defaults are today's upstream Xen. ``release`` is the tag whose sources the row was
    checked against (empty for variants that no tag holds).
    """

    name: str
    description: str
    release: str = ""
    # --- which sub-ops and knobs exist ------------------------------------------------------
    fifo: bool = True  # ops 11-13 exist (88910061ec61, RELEASE-4.4.0); else the default case's -ENOSYS
    fifo_compiled_in: bool = True  # CONFIG_EVTCHN_FIFO=n (cfe15a473d, 4.21): init/expand give -EOPNOTSUPP
    max_evtchn_port: bool = True  # per-domain port limit: XEN_DOMCTL_set_max_evtchn + xl max_event_channels
    #                               (a77eb86f44, RELEASE-4.4.0); before, only the ABI limits a guest
    soft_reset: bool = True  # XEN_DOMCTL_soft_reset exists (1a043f9dc7, RELEASE-4.7.0)
    bit7: Bit7 = Bit7.VPMU  # what domain-create flag bit 7 means
    # --- how the ops behave -----------------------------------------------------------------
    expand_not_fifo: Errno = Errno.EOPNOTSUPP  # expand_array before init_control: -ENOSYS until
    #                                            a66765eb06 (RELEASE-4.8.0)
    reset_revert: ResetRevert = ResetRevert.ALWAYS  # 400b3bd642 (4.5.0), 546d558a7a (4.7.0)
    reset_continuation: bool = True  # evtchn_reset preemptible: -ERESTART re-entered as EVTCHNOP_reset_cont,
    #                                  -EBUSY while a reset runs, -EAGAIN if ports were bound meanwhile
    #                                  (XSA-344 2785b2a9e0, XSA-343 8d385b247b; RELEASE-4.15.0)
    usable_gate: bool = True  # port ops run only on usable ports (evtchn_usable) and set_priority on
    #                           another port is -EACCES (XSA-343 e045199c7c, RELEASE-4.15.0)
    dynamic_2l_limit: bool = True  # max_evtchns(d) follows the guest's word size when asked (XSA-342
    #                                62bcdc4edb, RELEASE-4.15.0; 4.3's MAX_EVTCHNS(d) macro did too).
    #                                False: evtchn_2l_init latched it at creation, when every guest still
    #                                looked 64-bit, so a 32-bit guest got 4096 ports (XSA-342)
    port_valid_below_limit: bool = False  # port_is_valid also required port < max_evtchns(d): true until
    #                                       XSA-338 e59ce972d1 (RELEASE-4.15.0) relaxed it
    no_control_block_sets_pending: bool = False  # P set on a vCPU without a control block (<=4.16;
    #                                              8aa0e9d2d1, RELEASE-4.17.0)
    busy_port_skipped: bool = True  # a LINKED free port is not reused (78e24c269b0a, RELEASE-4.7.0)
    global_virq_owner: bool = True  # bind_virq of a global VIRQ by a domain that is not its handler
    #                                 (dom0 unless delegated) is -EBUSY: Juergen Gross's 2025 series
    #                                 (get_global_virq_handler), reviewed after 4.20's freeze, so 4.21
    poll_checks_usable: bool = True  # SCHEDOP_poll on a valid but unusable port is -EINVAL (evtchn_port_poll,
    #                                  "evtchn: honor evtchn_usable() in do_poll", Oct 2020, so 4.15);
    #                                  before, such a port was only never pending and the poll blocked
    singleshot_future_etime: bool = False  # VCPUOP_set_singleshot_timer with VCPU_SSHOTTMR_future and a
    #                                        deadline past is -ETIME; ignored since 19c6cbd909 (4.18)
    # --- QEMU's Xen emulation (hw/i386/kvm/xen_evtchn.c) where it is not Xen ---------------------
    fixed_port_table: bool = False  # every port below the 2-level limit exists; valid_port rejects 0
    foreign_dom_esrch: bool = False  # a guest naming any other domain (alloc_unbound.dom, status.dom,
    #                                  reset.dom) gets -ESRCH: one guest, no others to name
    peers_qemu_or_self: bool = False  # interdomain peers are QEMU (dom0 here) or the guest itself:
    #                                   alloc_unbound -EPERM, bind_interdomain -ESRCH otherwise
    interdomain_sets_pending: bool = True  # bind_interdomain marks the new local port pending
    pirq_bound_errno: Errno = Errno.EEXIST  # bind_pirq on a PIRQ that already has a port
    close_free_errno: Errno = Errno.EINVAL  # close on a FREE or RESERVED port
    unmask_free_errno: Errno | None = None  # unmask on a FREE port (None: 0, a no-op)
    bind_vcpu_checks_port_first: bool = False  # bind_vcpu's -EINVAL (port) before its -ENOENT (vCPU)
    bind_vcpu_raises_pending: bool = False  # bind_vcpu re-raises a pending, unmasked port on the new vCPU

    @property
    def fifo_available(self) -> bool:
        """Whether a domain on this hypervisor can switch to FIFO at all."""
        return self.fifo and self.fifo_compiled_in


_BEFORE_4_18 = dict(global_virq_owner=False, singleshot_future_etime=True)
_BEFORE_4_17 = dict(_BEFORE_4_18, no_control_block_sets_pending=True)
_BEFORE_4_15 = dict(_BEFORE_4_17, reset_continuation=False, usable_gate=False, dynamic_2l_limit=False,
                    port_valid_below_limit=True, bit7=Bit7.UNKNOWN, poll_checks_usable=False)
_BEFORE_4_7 = dict(_BEFORE_4_15, expand_not_fifo=Errno.ENOSYS, busy_port_skipped=False, soft_reset=False)

_ROWS = (
    XenVersion("4.3", "Xen 4.3 and older: 2-level only; ops 11-13 are unknown; no port limit knob",
               "RELEASE-4.3.0", **dict(_BEFORE_4_7, fifo=False, max_evtchn_port=False, dynamic_2l_limit=True,
                                      reset_revert=ResetRevert.NEVER)),
    XenVersion("4.4", "Xen 4.4: FIFO arrives; reset keeps FIFO mode", "RELEASE-4.4.0",
               **dict(_BEFORE_4_7, reset_revert=ResetRevert.NEVER)),
    XenVersion("4.5", "Xen 4.5-4.6: reset with DOMID_SELF reverts to 2-level", "RELEASE-4.5.0",
               **dict(_BEFORE_4_7, reset_revert=ResetRevert.SELF)),
    XenVersion("4.7", "Xen 4.7: any reset reverts; soft reset; busy ports skipped", "RELEASE-4.7.0",
               **dict(_BEFORE_4_15, expand_not_fifo=Errno.ENOSYS)),
    XenVersion("4.8", "Xen 4.8-4.14: expand_array before FIFO is -EOPNOTSUPP", "RELEASE-4.8.0", **_BEFORE_4_15),
    XenVersion("4.15", "Xen 4.15: the 2020 event-channel XSAs fixed (338, 342, 343, 344)", "RELEASE-4.15.0",
               **dict(_BEFORE_4_17, bit7=Bit7.UNKNOWN)),
    XenVersion("4.16", "Xen 4.16: bit 7 of the create flags becomes XEN_DOMCTL_CDF_vpmu", "RELEASE-4.16.0",
               **_BEFORE_4_17),
    XenVersion("4.17", "Xen 4.17: no P bit for a vCPU without a control block", "RELEASE-4.17.0",
               **_BEFORE_4_18),
    XenVersion("4.18", "Xen 4.18-4.20: VCPU_SSHOTTMR_future is ignored", "RELEASE-4.18.0",
               global_virq_owner=False),
    XenVersion("master", "Xen master (4.21 on; read at 4.23-dev): a global VIRQ is bound by its handler only"),
    XenVersion("patch-v4", "4.15-dev with [PATCH v4] XEN_DOMCTL_CDF_disable_fifo",
               **dict(_BEFORE_4_17, bit7=Bit7.DISABLE_FIFO)),
    XenVersion("patch-v5", "4.15-dev with [PATCH v5] XEN_DOMCTL_CDF_evtchn_fifo",
               **dict(_BEFORE_4_17, bit7=Bit7.EVTCHN_FIFO)),
    XenVersion("fifo-off", "Xen master built with CONFIG_EVTCHN_FIFO=n", fifo_compiled_in=False),
    XenVersion("qemu", "QEMU's Xen emulation on KVM: 2-level only", fifo=False, max_evtchn_port=False,
               reset_continuation=False, fixed_port_table=True, foreign_dom_esrch=True, peers_qemu_or_self=True,
               interdomain_sets_pending=False, global_virq_owner=False, pirq_bound_errno=Errno.EBUSY,
               close_free_errno=Errno.ENOENT, unmask_free_errno=Errno.EINVAL, bind_vcpu_checks_port_first=True,
               bind_vcpu_raises_pending=True),
)

#: The 2020 XSA-342/343/344 (and XSA-338) fixes as backported to the 4.10-4.14 stable branches
#: in late 2020 (4.14.1, for example): the 4.8 row with 4.15's behaviour in those places.
XSA_BACKPORTS = replace(
    _ROWS[4], name="4.14-xsa", release="",
    description="Xen 4.8-4.14 stable with the 2020 XSA-342/343/344 backports (as in 4.14.1)",
    reset_continuation=True, usable_gate=True, dynamic_2l_limit=True, port_valid_below_limit=False)

XEN_VERSIONS: dict[str, XenVersion] = {row.name: row for row in (*_ROWS, XSA_BACKPORTS)}

# Release -> the row that behaves like it (rows are eras: "4.8" covers 4.8 to 4.14).
_ERAS = ((4, 21, "master"), (4, 18, "4.18"), (4, 17, "4.17"), (4, 16, "4.16"), (4, 15, "4.15"), (4, 8, "4.8"),
         (4, 7, "4.7"), (4, 5, "4.5"), (4, 4, "4.4"))


def xen_version(name: str | XenVersion) -> XenVersion:
    """The row for ``name``: a row name, or any release like "4.6" mapped to its era."""
    if isinstance(name, XenVersion):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a Xen version is a row name or a release string, got {name!r}")
    if name in XEN_VERSIONS:
        return XEN_VERSIONS[name]
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", name)
    if not match:
        raise ValueError(f"unknown Xen version {name!r}; choose from {', '.join(XEN_VERSIONS)}")
    release = (int(match[1]), int(match[2]))
    for major, minor, row in _ERAS:
        if release >= (major, minor):
            return XEN_VERSIONS[row]
    return XEN_VERSIONS["4.3"]
