"""Bad guest input never raises: it gets the errno Xen would return.

Guest-controlled fields are C integers in Xen (``evtchn_port_t`` and vCPU ids are ``uint32_t``,
``domid_t`` is ``uint16_t``, gfns are ``uint64_t``; fact sheet 1.1), so a huge or negative
Python integer behaves as its truncation to that width: port -1 is 0xFFFFFFFF. Misuse of the
simulator itself (a wrong struct type, a field that is not an integer) is a Python error and
raises TypeError (architecture.md, "The hypercall boundary").

Models do_event_channel_op and the evtchn_* helpers of xen/common/event_channel.c, and
evtchn_fifo_init_control / evtchn_fifo_expand_array / evtchn_fifo_set_priority of
xen/common/event_fifo.c.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    ALLOC,
    ARRAY_GFN,
    BIND_VCPU,
    CLOSE,
    CONTROL_GFN,
    EXPAND,
    INIT,
    INTERDOMAIN,
    IPI,
    PIRQ,
    PRIO,
    RESET,
    SEND,
    STATUS,
    UNMASK,
    VIRQ,
    op,
    to_fifo,
)
from evtsim import (
    ARG_TYPES,
    DOMID_SELF,
    EVTCHN_2L_NR_CHANNELS,
    EVTCHN_FIFO_NR_CHANNELS,
    VIRQ_CONSOLE,
    VIRQ_TIMER,
    XEN_VERSIONS,
    COMPAT_EVTCHN_2L_NR_CHANNELS,
    Domain,
    Errno,
    EvtchnBindIpi,
    EvtchnClose,
    EvtchnOp,
    EvtchnSend,
    EvtchnStat,
    Xen,
    errno_name,
)
from evtsim.abi import (
    EVTCHN_FIFO_CONTROL_BLOCK_SIZE,
    EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES,
    EVTCHN_FIFO_PRIORITY_MIN,
    NR_VIRQS,
    PAGE_SIZE,
)
from evtsim.event_channel import NR_PIRQS


U16, U32, U64 = 1 << 16, 1 << 32, 1 << 64
BEYOND_RAM = 1 << 18  # Xen.domain_create's default nr_frames: the first gfn that is not RAM
LAST_OFFSET = PAGE_SIZE - EVTCHN_FIFO_CONTROL_BLOCK_SIZE  # 4024: the control block still fits


def rc_of(d: Domain, cmd: EvtchnOp, **fields) -> str:
    """The hypercall's return value, spelled as Xen's errno name for readable failures."""
    return errno_name(op(d, cmd, **fields)[0])


def bind_ipi(d: Domain, vcpu: int = 0) -> int:
    rc, arg = op(d, IPI, vcpu=vcpu)
    assert rc == 0, errno_name(rc)
    return arg.port


@pytest.fixture
def fifo_guest(guest: Domain) -> Domain:
    to_fifo(guest, pages=1)
    return guest


# --- out-of-range ports ------------------------------------------------------------------

# Each op's port field, with the other fields set to something harmless.
PORT_FIELDS = [
    (CLOSE, "port", {}),
    (SEND, "port", {}),
    (STATUS, "port", dict(dom=DOMID_SELF)),
    (BIND_VCPU, "port", dict(vcpu=0)),
    (UNMASK, "port", {}),
    (PRIO, "port", dict(priority=3)),
    (INTERDOMAIN, "remote_port", dict(remote_dom=DOMID_SELF)),
]
PORT_IDS = [f"{cmd.name.removeprefix('EVTCHNOP_')}.{field}" for cmd, field, _ in PORT_FIELDS]


@pytest.mark.parametrize("abi", ["2-level", "fifo"])
@pytest.mark.parametrize("port", ["valid_evtchns", 2**17, U32 - 1, -1, -(2**40) - 1])
@pytest.mark.parametrize(("cmd", "field", "others"), PORT_FIELDS, ids=PORT_IDS)
def test_port_beyond_the_valid_ports_is_einval(guest: Domain, abi, port, cmd, field, others) -> None:
    """port_is_valid (xen/include/xen/event.h) fails: every op taking a port returns -EINVAL.

    Negative ports are their uint32_t truncation, which is never a valid port.
    """
    if abi == "fifo":
        to_fifo(guest, pages=1)
    if port == "valid_evtchns":
        port = guest.ports.valid_evtchns
    assert rc_of(guest, cmd, **{field: port}, **others) == "-EINVAL"


@pytest.mark.parametrize("huge", [U32, U64, -U32, 7 * U32])
def test_port_is_truncated_to_32_bits(guest: Domain, huge: int) -> None:
    """evtchn_send: the guest's port is a uint32_t, so port + k*2**32 names the same port."""
    port = bind_ipi(guest)
    assert rc_of(guest, SEND, port=port + huge) == "0"
    assert guest.port_ops.is_pending(port)


# --- port 0 is reserved -------------------------------------------------------------------


@pytest.mark.parametrize(("cmd", "fields"), [(CLOSE, {}), (SEND, {}), (BIND_VCPU, dict(vcpu=1))],
                         ids=["close", "send", "bind_vcpu"])
def test_port_0_cannot_be_closed_sent_to_or_rebound(guest: Domain, cmd, fields) -> None:
    """evtchn_close / evtchn_send / evtchn_bind_vcpu: port 0 is ECS_RESERVED, so -EINVAL."""
    assert rc_of(guest, cmd, port=0, **fields) == "-EINVAL"


def test_port_0_reports_closed(guest: Domain) -> None:
    """evtchn_status: ECS_RESERVED reads as EVTCHNSTAT_closed (fact sheet 1.2)."""
    rc, arg = op(guest, STATUS, dom=DOMID_SELF, port=0)
    assert rc == 0
    assert arg.status == EvtchnStat.EVTCHNSTAT_closed


def test_unmasking_port_0_is_a_harmless_no_op(guest: Domain) -> None:
    """evtchn_unmask: port 0 is valid, and unmask on an unusable port does nothing."""
    assert rc_of(guest, UNMASK, port=0) == "0"


def test_port_0_priority_cannot_be_set(fifo_guest: Domain) -> None:
    """evtchn_port_set_priority: port 0 is not usable (evtchn_usable), so -EACCES."""
    assert rc_of(fifo_guest, PRIO, port=0, priority=3) == "-EACCES"


def test_port_0_is_never_allocated(guest: Domain) -> None:
    """get_free_port: the lowest free port is 1, because evtchn_init reserved port 0."""
    assert bind_ipi(guest) == 1


# --- out-of-range vCPUs -------------------------------------------------------------------

BAD_VCPUS = [2, 31, U32 - 1, -1, -(2**50) - 5]  # the guest has vCPUs 0 and 1
VCPU_FIELDS = [
    (IPI, {}),
    (VIRQ, dict(virq=VIRQ_TIMER)),
    (INIT, dict(control_gfn=CONTROL_GFN, offset=0)),
]


@pytest.mark.parametrize("vcpu", BAD_VCPUS)
@pytest.mark.parametrize(("cmd", "others"), VCPU_FIELDS, ids=["bind_ipi", "bind_virq", "init_control"])
def test_missing_vcpu_is_enoent(guest: Domain, vcpu, cmd, others) -> None:
    """domain_vcpu() finds no such vCPU: bind_ipi, bind_virq and init_control return -ENOENT."""
    assert rc_of(guest, cmd, vcpu=vcpu, **others) == "-ENOENT"


@pytest.mark.parametrize("vcpu", BAD_VCPUS)
def test_moving_a_port_to_a_missing_vcpu_is_enoent(guest: Domain, vcpu) -> None:
    """evtchn_bind_vcpu: the vCPU is checked first (-ENOENT), and the port stays where it was."""
    rc, alloc = op(guest, ALLOC, dom=DOMID_SELF, remote_dom=0)
    assert rc == 0
    assert rc_of(guest, BIND_VCPU, port=alloc.port, vcpu=vcpu) == "-ENOENT"
    assert guest.ports.chn[alloc.port].notify_vcpu_id == 0


@pytest.mark.parametrize("vcpu", [1, U32 - 1, -1])
def test_global_virq_on_a_vcpu_other_than_0_is_einval(xen: Xen, vcpu) -> None:
    """evtchn_bind_virq: a global VIRQ must be bound on vCPU 0, checked before the vCPU exists."""
    assert rc_of(xen.dom0, VIRQ, virq=VIRQ_CONSOLE, vcpu=vcpu) == "-EINVAL"


def test_vcpu_is_truncated_to_32_bits(guest: Domain) -> None:
    """evtchn_bind_ipi: vcpu 2**32 + 1 is vCPU 1 once Xen reads it as a uint32_t."""
    port = bind_ipi(guest, vcpu=U32 + 1)
    rc, status = op(guest, STATUS, dom=DOMID_SELF, port=port)
    assert rc == 0
    assert status.vcpu == 1


# --- VIRQs and PIRQs ----------------------------------------------------------------------


@pytest.mark.parametrize("virq", [NR_VIRQS, U32 - 1, -1, 2**100 + NR_VIRQS])
def test_virq_out_of_range_is_einval(guest: Domain, virq) -> None:
    """evtchn_bind_virq: virq >= NR_VIRQS (24) is -EINVAL."""
    assert rc_of(guest, VIRQ, virq=virq, vcpu=0) == "-EINVAL"


def test_virq_is_truncated_to_32_bits(guest: Domain) -> None:
    """evtchn_bind_virq: 2**32 + VIRQ_TIMER is VIRQ_TIMER."""
    rc, arg = op(guest, VIRQ, virq=U32 + VIRQ_TIMER, vcpu=0)
    assert rc == 0
    assert guest.vcpus[0].virq_to_evtchn[VIRQ_TIMER] == arg.port


@pytest.mark.parametrize("pirq", [NR_PIRQS, U32 - 1, -1])
def test_pirq_out_of_range_is_einval(guest: Domain, pirq) -> None:
    """evtchn_bind_pirq: pirq >= d->nr_pirqs is -EINVAL."""
    assert rc_of(guest, PIRQ, pirq=pirq, flags=0) == "-EINVAL"


# --- priorities ---------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [EVTCHN_FIFO_PRIORITY_MIN + 1, 255, U32 - 1, -1, -(2**70) - 1])
def test_priority_above_15_is_einval(fifo_guest: Domain, priority) -> None:
    """evtchn_fifo_set_priority: a priority above EVTCHN_FIFO_PRIORITY_MIN (15) is -EINVAL."""
    port = bind_ipi(fifo_guest)
    assert rc_of(fifo_guest, PRIO, port=port, priority=priority) == "-EINVAL"
    assert fifo_guest.ports.chn[port].priority == 7  # unchanged: EVTCHN_FIFO_PRIORITY_DEFAULT


def test_priority_is_truncated_to_32_bits(fifo_guest: Domain) -> None:
    """evtchn_set_priority: priority 2**32 + 3 is priority 3."""
    port = bind_ipi(fifo_guest)
    assert rc_of(fifo_guest, PRIO, port=port, priority=U32 + 3) == "0"
    assert fifo_guest.ports.chn[port].priority == 3


# --- domain ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(("cmd", "fields"), [
    (ALLOC, dict(dom=-1, remote_dom=0)),
    (STATUS, dict(dom=-1, port=1)),
    (RESET, dict(dom=-1)),
    (INTERDOMAIN, dict(remote_dom=-1, remote_port=1)),
    (ALLOC, dict(dom=U16 + 0x1234, remote_dom=0)),
], ids=["alloc_unbound", "status", "reset", "bind_interdomain", "alloc_unbound-0x11234"])
def test_domid_names_no_domain_is_esrch(guest: Domain, cmd, fields) -> None:
    """rcu_lock_domain_by_any_id: a domid_t with no domain (-1 is 0xFFFF) gives -ESRCH."""
    assert rc_of(guest, cmd, **fields) == "-ESRCH"


@pytest.mark.parametrize(("cmd", "fields"), [
    (ALLOC, dict(dom=U16 + DOMID_SELF, remote_dom=DOMID_SELF)),
    (STATUS, dict(dom=5 * U16 + DOMID_SELF, port=0)),
    (RESET, dict(dom=-U16 + DOMID_SELF)),
], ids=["alloc_unbound", "status", "reset"])
def test_domid_is_truncated_to_16_bits(guest: Domain, cmd, fields) -> None:
    """domid_t is a uint16_t: DOMID_SELF + k*2**16 is DOMID_SELF, so the call succeeds."""
    assert rc_of(guest, cmd, **fields) == "0"


# --- init_control -------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [LAST_OFFSET + 1, PAGE_SIZE - 1, PAGE_SIZE, 4, 1, 7, U32 - 1, -1, -8])
def test_control_block_offset_past_the_page_or_unaligned_is_einval(guest: Domain, offset) -> None:
    """evtchn_fifo_init_control: offset must be <= 4096 - 72 and 8-byte aligned; the domain stays 2-level."""
    assert rc_of(guest, INIT, control_gfn=CONTROL_GFN, offset=offset, vcpu=0) == "-EINVAL"
    assert guest.abi == "2-level"


@pytest.mark.parametrize("offset", [LAST_OFFSET, 8, U32 + 8])
def test_control_block_offset_within_the_page_is_accepted(guest: Domain, offset) -> None:
    """evtchn_fifo_init_control: 4024 is the last offset where the 72-byte block fits."""
    assert rc_of(guest, INIT, control_gfn=CONTROL_GFN, offset=offset, vcpu=0) == "0"
    assert guest.abi == "fifo"


@pytest.mark.parametrize("gfn", [BEYOND_RAM, U64 - 1, -1, 2**63])
def test_control_block_gfn_outside_guest_ram_is_einval(guest: Domain, gfn) -> None:
    """map_control_block -> map_guest_page: not a writable guest page, so -EINVAL and still 2-level."""
    assert rc_of(guest, INIT, control_gfn=gfn, offset=0, vcpu=0) == "-EINVAL"
    assert guest.abi == "2-level"


def test_control_block_gfn_is_truncated_to_64_bits(guest: Domain) -> None:
    """struct evtchn_init_control: control_gfn is a uint64_t, so 2**64 + gfn is gfn."""
    assert rc_of(guest, INIT, control_gfn=U64 + CONTROL_GFN, offset=0, vcpu=0) == "0"


def test_second_init_control_for_the_same_vcpu_is_einval(guest: Domain) -> None:
    """map_control_block: the vCPU already has a control block, so -EINVAL; FIFO mode stays."""
    assert rc_of(guest, INIT, control_gfn=CONTROL_GFN, offset=0, vcpu=0) == "0"
    assert rc_of(guest, INIT, control_gfn=CONTROL_GFN + 8, offset=0, vcpu=0) == "-EINVAL"
    assert guest.abi == "fifo"
    assert rc_of(guest, INIT, control_gfn=CONTROL_GFN + 1, offset=0, vcpu=1) == "0"


# --- expand_array -------------------------------------------------------------------------


def test_the_129th_event_array_page_is_enospc(guest: Domain) -> None:
    """add_page_to_event_array: at most EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES (128) pages."""
    to_fifo(guest, pages=0)
    for i in range(EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES):
        assert rc_of(guest, EXPAND, array_gfn=ARRAY_GFN + i) == "0"
    assert rc_of(guest, EXPAND, array_gfn=ARRAY_GFN + EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES) == "-ENOSPC"


@pytest.mark.parametrize("gfn", [BEYOND_RAM, U64 - 1, -1])
def test_event_array_gfn_outside_guest_ram_is_einval(fifo_guest: Domain, gfn) -> None:
    """add_page_to_event_array -> map_guest_page: not a writable guest page, so -EINVAL."""
    pages = len(fifo_guest.fifo.pages)
    assert rc_of(fifo_guest, EXPAND, array_gfn=gfn) == "-EINVAL"
    assert len(fifo_guest.fifo.pages) == pages


# --- running out of ports -----------------------------------------------------------------

MAX_PORT = 5
ALLOCATING_OPS = [
    (ALLOC, dict(dom=DOMID_SELF, remote_dom=0)),
    (IPI, dict(vcpu=0)),
    (VIRQ, dict(virq=VIRQ_TIMER, vcpu=1)),
    (PIRQ, dict(pirq=9, flags=0)),
    (INTERDOMAIN, dict(remote_dom=0, remote_port="dom0's offer")),
]


@pytest.mark.parametrize(("cmd", "fields"), ALLOCATING_OPS,
                         ids=[c.name.removeprefix("EVTCHNOP_") for c, _ in ALLOCATING_OPS])
def test_port_above_max_evtchn_port_is_enospc(xen: Xen, cmd, fields) -> None:
    """get_free_port: no port above the domain's max_evtchn_port (fact sheet 1.6, 2.1)."""
    d = xen.domain_create(vcpus=2, max_evtchn_port=MAX_PORT)
    if fields.get("remote_port") == "dom0's offer":
        rc, offer = op(xen.dom0, ALLOC, dom=DOMID_SELF, remote_dom=d.domain_id)
        fields = dict(fields, remote_port=offer.port)
    assert [bind_ipi(d) for _ in range(MAX_PORT)] == list(range(1, MAX_PORT + 1))
    assert rc_of(d, cmd, **fields) == "-ENOSPC"


def test_closing_a_port_at_the_limit_makes_room_again(xen: Xen) -> None:
    """get_free_port: -ENOSPC is not sticky; the lowest freed port is handed out next."""
    d = xen.domain_create(vcpus=1, max_evtchn_port=MAX_PORT)
    for _ in range(MAX_PORT):
        bind_ipi(d)
    assert rc_of(d, IPI, vcpu=0) == "-ENOSPC"
    assert rc_of(d, CLOSE, port=3) == "0"
    assert bind_ipi(d) == 3


@pytest.mark.parametrize(("compat", "nr_channels"), [(False, EVTCHN_2L_NR_CHANNELS),
                                                     (True, COMPAT_EVTCHN_2L_NR_CHANNELS)],
                         ids=["64-bit", "32-bit"])
def test_two_level_guest_runs_out_at_its_abi_limit(xen: Xen, compat, nr_channels) -> None:
    """max_evtchns(d): a 2-level guest has ports 1 .. word_size**2 - 1, whatever max_evtchn_port says."""
    d = xen.domain_create(vcpus=1, compat=compat, max_evtchn_port=EVTCHN_FIFO_NR_CHANNELS - 1)
    for _ in range(nr_channels - 1):
        bind_ipi(d)
    assert rc_of(d, IPI, vcpu=0) == "-ENOSPC"


# --- the property: any integers, never an exception ---------------------------------------

XEN_ERRNOS = {-e.value for e in Errno}
EDGES = [0, 1, 2, 7, 15, 16, 23, 24, 63, 64, 255, 256, 1023, 1024, 4024, 4095, 4096,
         DOMID_SELF, U16 - 1, U16, 2**17, 2**31 - 1, 2**31, U32 - 1, U32, 2**63, U64 - 1, U64,
         CONTROL_GFN, CONTROL_GFN + 1, ARRAY_GFN, ARRAY_GFN + 1, BEYOND_RAM, -1, -(2**31), -(2**63)]
any_int = st.one_of(st.integers(min_value=-2, max_value=70), st.sampled_from(EDGES), st.integers())


@st.composite
def hypercalls(draw):
    """(caller, cmd, arg): any sub-op, with any integer in every field of its struct."""
    cmd = draw(st.sampled_from(list(EvtchnOp)))
    cls = ARG_TYPES[cmd]
    arg = cls(**{f.name: draw(any_int) for f in dataclasses.fields(cls)})
    return draw(st.sampled_from(["guest", "dom0"])), cmd, arg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from(sorted(XEN_VERSIONS)), fifo=st.booleans(),
       calls=st.lists(hypercalls(), min_size=1, max_size=12))
def test_any_integers_give_zero_or_a_xen_errno(version, fifo, calls) -> None:
    """do_event_channel_op on arbitrary guest input: 0 or -errno from Xen's errno.h, never a raise."""
    xen = Xen(version, dom0_vcpus=2)
    guest = xen.domain_create(vcpus=2)
    if fifo:  # try to switch; some rows refuse, which is fine
        op(guest, INIT, control_gfn=CONTROL_GFN, offset=0, vcpu=0)
        op(guest, EXPAND, array_gfn=ARRAY_GFN)
    callers = {"guest": guest, "dom0": xen.dom0}
    for who, cmd, arg in calls:
        rc = callers[who].evtchn_op(cmd, arg)
        assert type(rc) is int
        assert rc == 0 or rc in XEN_ERRNOS, (cmd.name, arg, rc)


@settings(max_examples=100, deadline=None)
@given(cmd=st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(lambda c: not 0 <= c <= 14),
       arg=st.one_of(st.none(), st.builds(EvtchnSend, port=any_int)))
def test_any_unknown_cmd_is_enosys(cmd, arg) -> None:
    """do_event_channel_op: the default case answers -ENOSYS and never reads the argument."""
    xen = Xen("master")
    assert errno_name(xen.dom0.evtchn_op(cmd, arg)) == "-ENOSYS"


# --- misuse of the simulator raises -------------------------------------------------------

IN_FIELDS = {
    EvtchnOp.EVTCHNOP_bind_interdomain: ("remote_dom", "remote_port"),
    EvtchnOp.EVTCHNOP_bind_virq: ("virq", "vcpu"),
    EvtchnOp.EVTCHNOP_bind_pirq: ("pirq", "flags"),
    EvtchnOp.EVTCHNOP_close: ("port",),
    EvtchnOp.EVTCHNOP_send: ("port",),
    EvtchnOp.EVTCHNOP_status: ("dom", "port"),
    EvtchnOp.EVTCHNOP_alloc_unbound: ("dom", "remote_dom"),
    EvtchnOp.EVTCHNOP_bind_ipi: ("vcpu",),
    EvtchnOp.EVTCHNOP_bind_vcpu: ("port", "vcpu"),
    EvtchnOp.EVTCHNOP_unmask: ("port",),
    EvtchnOp.EVTCHNOP_reset: ("dom",),
    EvtchnOp.EVTCHNOP_init_control: ("control_gfn", "offset", "vcpu"),
    EvtchnOp.EVTCHNOP_expand_array: ("array_gfn",),
    EvtchnOp.EVTCHNOP_set_priority: ("port", "priority"),
    EvtchnOp.EVTCHNOP_reset_cont: ("dom",),
}  # the IN fields of fact sheet table 1.1
NOT_INTEGERS = ["1", 1.0, None]
IN_CASES = [(cmd, name, bad) for cmd, names in IN_FIELDS.items() for name in names for bad in NOT_INTEGERS]


def test_every_sub_op_has_its_in_fields_listed() -> None:
    """The misuse table covers every sub-op, and names only real struct fields."""
    assert set(IN_FIELDS) == set(EvtchnOp)
    for cmd, names in IN_FIELDS.items():
        assert set(names) <= {f.name for f in dataclasses.fields(ARG_TYPES[cmd])}


@pytest.mark.parametrize(("cmd", "field", "bad"), IN_CASES,
                         ids=[f"{c.name.removeprefix('EVTCHNOP_')}.{f}={b!r}" for c, f, b in IN_CASES])
def test_non_integer_field_raises_type_error(guest: Domain, cmd, field, bad) -> None:
    """Simulator misuse, not guest input: a field that is not an integer raises TypeError.

    Xen copies the whole struct from the guest before looking at it (copy_from_guest), so the
    check must not depend on which path the handler takes: evtsim makes it when the struct is
    filled in, before any hypercall can see it.
    """
    with pytest.raises(TypeError, match="integer"):
        guest.evtchn_op(cmd, ARG_TYPES[cmd](**{field: bad}))


def test_a_non_integer_assigned_to_a_reused_struct_raises_type_error(guest: Domain) -> None:
    """Guests reuse one buffer per call; a bad assignment is refused then and there."""
    arg = EvtchnSend(port=1)
    with pytest.raises(TypeError, match="EvtchnSend.port: hypercall fields are integers"):
        arg.port = "2"
    assert arg.port == 1


@pytest.mark.parametrize(("cmd", "field"), [(ALLOC, "remote_dom"), (INTERDOMAIN, "remote_port")],
                         ids=["alloc_unbound.remote_dom", "bind_interdomain.remote_port"])
def test_rejected_misuse_leaves_the_port_table_untouched(guest: Domain, cmd, field) -> None:
    """A TypeError must not leave a half-allocated port behind: the next bind still gets port 1."""
    with pytest.raises(TypeError):
        guest.evtchn_op(cmd, ARG_TYPES[cmd](**{field: "1"}))
    assert bind_ipi(guest) == 1
    assert guest.ports.active == 1


@pytest.mark.parametrize("arg", [EvtchnClose(port=1), None, {"port": 1}, 1],
                         ids=["other struct", "None", "dict", "int"])
def test_wrong_argument_struct_raises_type_error_naming_the_op(guest: Domain, arg) -> None:
    """EVTCHNOP_send takes struct evtchn_send: anything else is a Python error, not an errno."""
    with pytest.raises(TypeError, match=r"EVTCHNOP_send.*EvtchnSend"):
        guest.evtchn_op(SEND, arg)


@pytest.mark.parametrize("cmd", ["send", 4.0, None])
def test_non_integer_cmd_raises_type_error(guest: Domain, cmd) -> None:
    """The sub-op number is an integer (an EVTCHNOP_* value); anything else is misuse."""
    with pytest.raises(TypeError, match="cmd"):
        guest.evtchn_op(cmd, EvtchnSend(port=1))


def test_struct_with_bind_ipi_type_for_send_is_rejected_before_any_effect(guest: Domain) -> None:
    """A mismatched struct raises before Xen does anything: no port is bound or made pending."""
    with pytest.raises(TypeError):
        guest.evtchn_op(SEND, EvtchnBindIpi(vcpu=0))
    assert guest.ports.active == 0


class SneakyInt(int):
    """An int whose ``&`` and ``>>`` lie: Xen's C arithmetic must never call them."""

    def __and__(self, other):
        return 10**9

    def __rshift__(self, other):
        return -1


@pytest.mark.parametrize(("cmd", "field"), [(SEND, "port"), (IPI, "vcpu"), (INIT, "control_gfn"),
                                            (PRIO, "priority"), (VIRQ, "virq")],
                         ids=["send.port", "bind_ipi.vcpu", "init_control.control_gfn", "set_priority.priority",
                              "bind_virq.virq"])
def test_an_int_subclass_in_a_field_raises_type_error_naming_it(guest: Domain, cmd, field) -> None:
    """It used to reach the port arithmetic and fail there (an IndexError), or quietly pick
    another vCPU; now the struct refuses it when it is filled in."""
    with pytest.raises(TypeError, match=rf"\.{field}: hypercall fields are plain integers, got 1 of type "
                                        r"SneakyInt, an int subclass; pass int\(value\)"):
        ARG_TYPES[cmd](**{field: SneakyInt(1)})


def test_an_int_enum_member_is_a_valid_field(guest: Domain) -> None:
    assert op(guest, VIRQ, virq=VIRQ_TIMER, vcpu=0)[0] == 0


def test_an_int_subclass_as_the_sub_op_raises_type_error(guest: Domain) -> None:
    with pytest.raises(TypeError, match="cmd must be an EVTCHNOP_\\* number, got 4 of type SneakyInt"):
        guest.evtchn_op(SneakyInt(4), EvtchnSend(port=1))


def test_destroying_a_domain_twice_raises_value_error(xen: Xen, guest: Domain) -> None:
    xen.domain_destroy(guest)
    with pytest.raises(ValueError, match=rf"cannot destroy domain {guest.domain_id}: it was destroyed"):
        xen.domain_destroy(guest)


def test_destroying_another_xens_domain_raises_value_error(guest: Domain) -> None:
    with pytest.raises(ValueError, match="it is not a domain of this Xen"):
        Xen("master").domain_destroy(guest)
    assert guest.xen.domains[guest.domain_id] is guest


@pytest.mark.parametrize(("cmd", "fields"), [(INIT, dict(control_gfn=CONTROL_GFN, offset=0, vcpu=0)),
                                             (IPI, dict(vcpu=0)), (SEND, dict(port=1))],
                         ids=["init_control", "bind_ipi", "send"])
def test_a_destroyed_domain_makes_no_hypercall(xen: Xen, guest: Domain, cmd, fields) -> None:
    """A destroyed domain switching to FIFO used to get 0 and a FIFO engine; no guest runs there."""
    xen.domain_destroy(guest)
    with pytest.raises(ValueError, match=rf"domain {guest.domain_id} was destroyed: it makes no more hypercalls"):
        op(guest, cmd, **fields)
    assert guest.fifo is None


@pytest.mark.parametrize("action", ["domain_soft_reset", "domain_pause"])
def test_a_destroyed_domain_cannot_be_reset_or_paused(xen: Xen, guest: Domain, action) -> None:
    xen.domain_destroy(guest)
    with pytest.raises(ValueError, match="it was destroyed"):
        getattr(xen, action)(guest)
