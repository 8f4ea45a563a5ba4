"""The port table: Xen's lowest-free allocation, buckets of valid ports, limits.

Models get_free_port / evtchn_allocate_port and evtchn_init (xen/common/event_channel.c).
"""

from conftest import op

from evtsim import (
    ECS,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_close,
    EVTCHNOP_status,
    EVTCHNSTAT_closed,
    AllocSite,
    Errno,
    Xen,
)


def bind_ipi(d):
    rc, arg = op(d, EVTCHNOP_bind_ipi, vcpu=0)
    return arg.port if rc == 0 else rc


def test_port_zero_is_reserved_and_reported_closed(guest):
    """evtchn_init marks port 0 ECS_RESERVED; evtchn_status reports it as closed."""
    assert guest.ports.chn[0].state == ECS.ECS_RESERVED
    rc, status = op(guest, EVTCHNOP_status, dom=guest.domain_id, port=0)
    assert rc == 0 and status.status == EVTCHNSTAT_closed


def test_first_allocated_port_is_one(guest):
    """get_free_port never hands out the reserved port 0."""
    assert bind_ipi(guest) == 1


def test_allocation_takes_the_lowest_free_port(guest):
    """get_free_port scans from 0: a closed low port is reused before higher ones."""
    ports = [bind_ipi(guest) for _ in range(5)]
    assert ports == [1, 2, 3, 4, 5]
    op(guest, EVTCHNOP_close, port=2)
    op(guest, EVTCHNOP_close, port=4)
    assert [bind_ipi(guest), bind_ipi(guest), bind_ipi(guest)] == [2, 4, 6]


def test_valid_ports_grow_one_bucket_of_64_at_a_time(guest):
    """evtchn_allocate_port adds EVTCHNS_PER_BUCKET struct evtchn when it runs out."""
    assert guest.ports.valid_evtchns == 64
    for _ in range(63):
        bind_ipi(guest)
    assert guest.ports.valid_evtchns == 64
    assert bind_ipi(guest) == 64
    assert guest.ports.valid_evtchns == 128


def test_ports_above_max_evtchn_port_give_enospc():
    """evtchn_allocate_port: a port above d->max_evtchn_port is -ENOSPC."""
    xen = Xen()
    g = xen.domain_create(max_evtchn_port=3)
    assert [bind_ipi(g) for _ in range(4)] == [1, 2, 3, -Errno.ENOSPC]


def test_a_full_2_level_domain_stops_at_the_abi_limit():
    """max_evtchns(d) is 4096 for a 64-bit 2-level guest, whatever max_evtchn_port says."""
    xen = Xen()
    g = xen.domain_create(max_evtchn_port=10_000)
    ports = [bind_ipi(g) for _ in range(4096)]
    assert ports[-2] == 4095 and ports[-1] == -Errno.ENOSPC


def test_a_failed_bucket_allocation_gives_enomem(guest):
    """Running out of memory for a new bucket is -ENOMEM; the next attempt succeeds."""
    xen = guest.xen
    for _ in range(63):
        bind_ipi(guest)
    xen.faults.fail(AllocSite.EVTCHN_BUCKET, guest.domain_id)
    assert bind_ipi(guest) == -Errno.ENOMEM
    assert bind_ipi(guest) == 64


def test_active_count_follows_binds_and_closes(guest):
    """d->active_evtchns counts bound ports, not the reserved port 0."""
    ports = [bind_ipi(guest) for _ in range(3)]
    assert guest.ports.active == 3
    op(guest, EVTCHNOP_close, port=ports[0])
    assert guest.ports.active == 2
    assert [chn.port for chn in guest.ports.bound()] == ports[1:]


def test_a_closed_port_goes_back_to_vcpu_0(xen):
    """free_evtchn resets notify_vcpu_id to 0 for the next user of the port."""
    g = xen.domain_create(vcpus=2)
    rc, arg = op(g, EVTCHNOP_bind_ipi, vcpu=1)
    assert g.ports.chn[arg.port].notify_vcpu_id == 1
    op(g, EVTCHNOP_close, port=arg.port)
    assert g.ports.chn[arg.port].notify_vcpu_id == 0


def test_a_port_keeps_its_fields_while_the_table_grows(xen):
    """Buckets keep every struct evtchn where it is: a bound interdomain port reads the same
    (state, vCPU, peer, priority, fifo_lastq) after hundreds more ports become valid."""
    g = xen.domain_create(vcpus=2, max_evtchn_port=4095)
    rc, alloc = op(xen.dom0, EVTCHNOP_alloc_unbound, dom=0, remote_dom=g.domain_id)
    rc, bind = op(g, EVTCHNOP_bind_interdomain, remote_dom=0, remote_port=alloc.port)
    op(g, EVTCHNOP_bind_vcpu, port=bind.local_port, vcpu=1)
    chn = g.ports.chn[bind.local_port]
    before = (chn.state, chn.notify_vcpu_id, chn.remote_dom, chn.remote_port, chn.priority,
              chn.last_vcpu_id, chn.last_priority)
    for _ in range(600):
        bind_ipi(g)
    assert g.ports.valid_evtchns > 600
    after = g.ports.chn[bind.local_port]
    assert (after.state, after.notify_vcpu_id, after.remote_dom, after.remote_port, after.priority,
            after.last_vcpu_id, after.last_priority) == before
    assert before == (ECS.ECS_INTERDOMAIN, 1, xen.dom0, alloc.port, 7, 0, 7)


def test_a_port_view_reads_and_writes_the_table(guest):
    """d.ports.chn[p] is a view of struct evtchn: what it writes, the table (and Xen) sees."""
    port = bind_ipi(guest)
    chn = guest.ports.chn[port]
    assert chn.state is ECS.ECS_IPI and guest.ports.state[port] == ECS.ECS_IPI
    chn.pending = True
    assert guest.ports.pending[port] == 1 and guest.ports.chn[port].pending is True
    chn.last_vcpu_id, chn.last_priority = 3, 5
    assert (chn.last_vcpu_id, chn.last_priority) == (3, 5)
    assert chn.remote_dom is None  # only an interdomain port has a peer
