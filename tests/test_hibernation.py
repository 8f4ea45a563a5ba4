"""The hibernation scenario (the 2020 xen-devel thread): every alternative's outcome, derived
from the mechanism that the trace's records and snapshots show.

A guest boots on Xen 4.3 (init_control -> -ENOSYS, so 2-level), hibernates, and resumes on
another host, where a boot kernel chooses an ABI first (xen-abi-facts.md 4.1, 4.6, 8.10).
No outcome table is copied here: each test states why, e.g. "Xen stays FIFO, so it never
sets a 2-level pending bit, so the 2-level resumed kernel sees nothing".
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from unittest import mock

import pytest

from evtsim import EVTCHNOP_reset, Errno
from evtsim import scenario as scenario_module
from evtsim.scenario import World
from evtsim.scenarios import SCENARIOS, make_params
from evtsim.trace import Call, ChannelCount, Record, Trace
from evtsim.xen import SHARED_INFO_GFN

A, B = "guest@A", "guest@B"
FIFO_OPS = ("init_control", "expand_array", "set_priority")
EVENT_CHANNEL_STRUCTURES = ("control_block", "event_array")
WORKING_CHANNELS = ("timer0", "timer1", "resched1", "vbd")  # what traffic sends besides xenstore/console


@dataclass(frozen=True)
class Run:
    trace: Trace
    world: World  # the machine after the run (only for checking that records do not share it)


def execute(params) -> Run:
    """Run the scenario registered as "hibernation", keeping the world it ran in."""
    worlds: list[World] = []

    class Capturing(World):
        def __init__(self) -> None:
            super().__init__()
            worlds.append(self)

    with mock.patch.object(scenario_module, "World", Capturing):
        trace = SCENARIOS["hibernation"].run(params)
    return Run(trace, worlds[0])


@functools.lru_cache(maxsize=None)
def cached(params) -> Run:
    return execute(params)


def hib(**params) -> Run:
    return cached(make_params("hibernation", **params))


def record(trace: Trace, words: str) -> Record:
    """The one record whose step name contains ``words``."""
    found = [r for r in trace.records if words in r.step]
    assert len(found) == 1, f"{words!r} matches {[r.step for r in found]}"
    return found[0]


def boot_step(t: Trace) -> Record:
    return record(t, "boot kernel starts")


def image_step(t: Trace) -> Record:
    return record(t, "image loaded")


def resume_step(t: Trace) -> Record:
    return record(t, "resumed kernel")


def traffic_step(t: Trace) -> Record:
    return record(t, "traffic on the new host")


def original_step(t: Trace) -> Record:
    return record(t, "original kernel boots")


def on_new_host(t: Trace) -> tuple[int, int]:
    """(sent, delivered) on host B, from the outcome's per-host counts."""
    hosts = {h.host: h for h in t.outcome.hosts}
    return (hosts["B"].sent, hosts["B"].delivered) if "B" in hosts else (0, 0)


def channel_counts(r: Record, guest: str) -> dict[str, ChannelCount]:
    """What each channel of ``guest`` saw during the step ``r``, by channel name."""
    return {c.channel: c for c in r.channels if c.guest == guest}


def falls_back(policy: str, errno: str) -> bool:
    """Fact sheet 4.1: Linux falls back on any negative rc; the review's other guests differ."""
    return policy == "any" or (policy == "enosys-only" and errno == "ENOSYS")


def registered_frames(r: Record, guest: str) -> set[int]:
    """Frames Xen maps as a control block or event-array page at this step."""
    return {f.gfn for f in r.domain(guest).frames if f.xen_mapping in EVENT_CHANNEL_STRUCTURES}


def frames_written_since(t: Trace, since: Record) -> set[int]:
    """Guest frames (shared_info aside) that Xen wrote after ``since``."""
    then = {f.gfn: f.xen_writes for f in since.domain(B).frames}
    last = t.records[-1].domain(B)
    return {f.gfn for f in last.frames if f.gfn != SHARED_INFO_GFN and f.xen_writes > then.get(f.gfn, 0)}


def fifo_calls(t: Trace, guest: str) -> list[Call]:
    return [c for r in t.records for c in r.calls if c.domain == guest and c.op in FIFO_OPS]


#: Each alternative in which Xen refuses the boot kernel's init_control, and the errno it
#: returns (a property of the fix, fact sheet 3 and 8.2, not of the outcome).
REFUSALS = {
    "v4-ENOSYS": ({"fix": "disable-fifo", "errno": "ENOSYS"}, "ENOSYS"),
    "v4-EPERM": ({"fix": "disable-fifo", "errno": "EPERM"}, "EPERM"),
    "v4-EACCES": ({"fix": "disable-fifo", "errno": "EACCES"}, "EACCES"),
    "v5": ({"fix": "evtchn-fifo"}, "ENOSYS"),
    "fifo-off": ({"fix": "fifo-off"}, "EOPNOTSUPP"),
    "qemu": ({"fix": "qemu"}, "ENOSYS"),
    "xsm-EPERM": ({"fix": "xsm", "errno": "EPERM"}, "EPERM"),
    "xsm-EACCES": ({"fix": "xsm", "errno": "EACCES"}, "EACCES"),
    "enomem": ({"fix": "enomem"}, "ENOMEM"),
}
POLICIES = ("any", "enosys-only", "never")
CASES = [(name, policy) for name in REFUSALS for policy in POLICIES]
#: The original kernel meets -ENOSYS on Xen 4.3; the boot kernel meets the fix's errno.
NEVER_BOOTS = [c for c in CASES if not falls_back(c[1], "ENOSYS")]
BOOT_KERNEL_DIES = [c for c in CASES if falls_back(c[1], "ENOSYS") and not falls_back(c[1], REFUSALS[c[0]][1])]
BOTH_FALL_BACK = [c for c in CASES if falls_back(c[1], "ENOSYS") and falls_back(c[1], REFUSALS[c[0]][1])]


def refused(name: str, policy: str) -> Run:
    return hib(**REFUSALS[name][0], guest_fallback=policy)


def ids(cases) -> list[str]:
    return [f"{name}/{policy}" for name, policy in cases]


# --- no fix: the bug -------------------------------------------------------------------------

NEW_HOSTS = ("4.4", "4.7", "master")


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_the_boot_kernel_switches_the_domain_to_fifo(xen):
    t = hib(xen=xen).trace
    boot = boot_step(t)
    assert boot.domain(B).abi == "fifo" and boot.domain(B).kernel_abi == "fifo"
    assert [c.rc for c in boot.calls if c.op == "init_control"] == [0, 0]  # one per vCPU


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_the_resumed_kernel_speaks_2_level_to_a_fifo_domain(xen):
    t = hib(xen=xen).trace
    assert original_step(t).domain(A).kernel_abi == "2-level"
    resumed = resume_step(t).domain(B)
    assert resumed.kernel_abi == "2-level" and resumed.abi == "fifo"


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_xen_links_fifo_words_and_never_sets_a_2_level_pending_bit(xen):
    traffic = traffic_step(hib(xen=xen).trace).domain(B)
    assert not any(traffic.evtchn_pending)
    assert not any(v.pending_sel for v in traffic.vcpus)
    assert traffic.linked_ports > 0
    assert any(q.ports for q in traffic.queues)


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_no_event_sent_on_the_new_host_reaches_the_resumed_kernel(xen):
    t = hib(xen=xen).trace
    sent, delivered = on_new_host(t)
    assert sent > 0 and delivered == 0
    assert t.outcome.delivered < t.outcome.sent
    assert t.outcome.first_loss_step == traffic_step(t).index


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_xen_writes_exactly_the_frames_the_boot_kernel_registered(xen):
    t = hib(xen=xen).trace
    registered = registered_frames(boot_step(t), B)
    assert registered and all(f.content.startswith("boot kernel") for f in boot_step(t).domain(B).frames
                              if f.gfn in registered)
    assert frames_written_since(t, image_step(t)) == registered
    last = {f.gfn: f for f in t.records[-1].domain(B).frames}
    assert all(last[g].xen_mapping in EVENT_CHANNEL_STRUCTURES and last[g].content == "hibernation image"
               for g in registered)
    assert set(t.outcome.corrupted_frames) == registered
    assert t.outcome.first_corruption_step > image_step(t).index


@pytest.mark.parametrize("xen", NEW_HOSTS)
def test_without_a_fix_the_fifo_queues_live_in_frames_that_now_hold_the_image(xen):
    traffic = traffic_step(hib(xen=xen).trace).domain(B)
    assert traffic.queues and all("hibernation image" in q.note for q in traffic.queues)


# --- the guest's fallback policy against each refusal ------------------------------------


def test_the_cases_cover_every_kind_of_ending():
    assert NEVER_BOOTS and BOOT_KERNEL_DIES and BOTH_FALL_BACK
    assert len(NEVER_BOOTS) + len(BOOT_KERNEL_DIES) + len(BOTH_FALL_BACK) == len(CASES)


@pytest.mark.parametrize("name, policy", NEVER_BOOTS, ids=ids(NEVER_BOOTS))
def test_a_guest_that_never_falls_back_cannot_even_boot_on_the_old_host(name, policy):
    t = refused(name, policy).trace
    original = original_step(t)
    assert Call(A, "init_control", -Errno.ENOSYS) in original.calls
    assert "ENOSYS" in original.domain(A).crashed
    assert t.outcome.crash_step == original.index


@pytest.mark.parametrize("name, policy", NEVER_BOOTS, ids=ids(NEVER_BOOTS))
def test_the_story_of_a_guest_that_cannot_boot_ends_there_and_says_why(name, policy):
    """No image is written, so no new domain is created and no kernel boots without one."""
    t = refused(name, policy).trace
    assert t.records[-1] == original_step(t)
    assert t.not_run[0] == "traffic on the old host" and t.not_run[-1] == "traffic on the new host"
    assert t.records[-1].notes[-1].startswith("the story ends here: the original kernel crashed (EVTCHNOP_init_control")
    assert t.outcome.hosts == () and t.outcome.verdict == "guest crash"


@pytest.mark.parametrize("name, policy", BOOT_KERNEL_DIES, ids=ids(BOOT_KERNEL_DIES))
def test_a_guest_that_only_trusts_enosys_dies_in_the_boot_kernel_on_another_errno(name, policy):
    t = refused(name, policy).trace
    errno = REFUSALS[name][1]
    boot = boot_step(t)
    assert Call(B, "init_control", -Errno[errno]) in boot.calls
    assert errno in boot.domain(B).crashed
    assert t.outcome.crash_step == boot.index and t.outcome.verdict == "guest crash"
    assert t.records[-1] == boot  # no image is loaded into a dead guest, nothing resumes
    assert t.not_run == ("image loaded over guest memory", "resumed kernel re-establishes channels",
                         "traffic on the new host")
    assert on_new_host(t) == (0, 0)


@pytest.mark.parametrize("name, policy", BOTH_FALL_BACK, ids=ids(BOTH_FALL_BACK))
def test_a_guest_that_falls_back_twice_resumes_with_xen_and_kernel_both_2_level(name, policy):
    t = refused(name, policy).trace
    assert all(r.domain(B).abi == "2-level" for r in t.records if r.host == "B" and r.domains)
    resumed = resume_step(t).domain(B)
    assert resumed.kernel_abi == resumed.abi == "2-level" and resumed.crashed is None


@pytest.mark.parametrize("name, policy", BOTH_FALL_BACK, ids=ids(BOTH_FALL_BACK))
def test_a_guest_that_falls_back_twice_gets_every_event_and_xen_writes_no_handed_over_frame(name, policy):
    run = refused(name, policy)
    t = run.trace
    sent, delivered = on_new_host(t)
    assert sent > 0 and delivered == sent
    assert t.outcome.stray_writes == 0 and t.outcome.corrupted_frames == ()
    assert t.outcome.verdict == "works"
    traffic = channel_counts(traffic_step(t), B)
    assert traffic and all(c.delivered == c.sent and c.unbound == 0 for c in traffic.values())


@pytest.mark.parametrize("name", REFUSALS)
def test_every_record_carries_xens_errno_for_the_refused_fifo_op(name):
    t = refused(name, "any").trace
    errno = -Errno[REFUSALS[name][1]]
    assert Call(A, "init_control", -Errno.ENOSYS) in original_step(t).calls
    assert Call(B, "init_control", errno) in boot_step(t).calls
    assert all(c.rc < 0 for c in fifo_calls(t, B))  # no FIFO op ever succeeded on B


def test_the_v4_flag_makes_init_control_return_minus_38_in_the_boot_kernel_step():
    t = hib(fix="disable-fifo").trace
    assert Call(B, "init_control", -38) in boot_step(t).calls
    assert f"{B}:init_control=-ENOSYS" in t.lines()[boot_step(t).index + 1]


# --- the guest-side fix: xen.fifo_events=0 ------------------------------------------------


def test_fifo_events_0_on_the_boot_kernel_issues_no_fifo_op_and_keeps_the_domain_2_level():
    """Only xen_setup_timer's set_priority reaches Xen, as from any 2-level kernel: -ENOSYS."""
    t = hib(fix="fifo-events-0").trace
    assert {(c.op, c.rc) for c in fifo_calls(t, B)} == {("set_priority", -Errno.ENOSYS)}
    boot = boot_step(t).domain(B)
    assert boot.abi == boot.kernel_abi == "2-level"


def test_fifo_events_0_on_the_boot_kernel_delivers_every_event():
    t = hib(fix="fifo-events-0").trace
    sent, delivered = on_new_host(t)
    assert sent > 0 and delivered == sent and t.outcome.stray_writes == 0


# --- EVTCHNOP_reset from the boot kernel --------------------------------------------------


def test_reset_on_xen_4_4_keeps_fifo_so_the_bug_remains():
    t = hib(fix="reset", xen="4.4").trace
    reset = record(t, "EVTCHNOP_reset")
    assert Call(B, "reset", 0) in reset.calls
    assert reset.domain(B).abi == "fifo" and reset.domain(B).ports == ()
    assert resume_step(t).domain(B).kernel_abi == "2-level"
    assert on_new_host(t)[1] == 0
    assert set(t.outcome.corrupted_frames) == registered_frames(boot_step(t), B)
    assert frames_written_since(t, image_step(t)) == registered_frames(boot_step(t), B)


@pytest.mark.parametrize("xen", ("4.5", "4.7", "master"))
def test_reset_reverts_to_2_level_and_closes_every_port(xen):
    t = hib(fix="reset", xen=xen).trace
    reset = record(t, "EVTCHNOP_reset")
    assert Call(B, "reset", 0) in reset.calls
    assert reset.domain(B).abi == "2-level" and reset.domain(B).ports == ()
    assert registered_frames(reset, B) == set()  # Xen let go of the boot kernel's frames
    assert t.outcome.stray_writes == 0 and t.outcome.corrupted_frames == ()
    assert set(t.outcome.channels_closed) == {"xenstore", "console"}


@pytest.mark.parametrize("xen", ("4.5", "4.7", "master"))
def test_after_a_reverting_reset_xenstore_and_console_are_lost_while_the_rest_works(xen):
    """Read from the new host's traffic step: dom0's xenstore and console ends went back to
    UNBOUND when the reset closed the guest's, so Xen drops what dom0 sends on them."""
    t = hib(fix="reset", xen=xen).trace
    rounds = 2
    traffic = channel_counts(traffic_step(t), B)
    for channel in ("xenstore", "console"):
        assert (traffic[channel].sent, traffic[channel].unbound, traffic[channel].delivered) == (rounds, rounds, 0)
    for channel in WORKING_CHANNELS:
        assert (traffic[channel].sent, traffic[channel].unbound, traffic[channel].delivered) == (rounds, 0, rounds)
    assert t.outcome.lost == 2 * rounds and t.outcome.verdict == "events lost"


@pytest.mark.parametrize("xen", ("4.5", "4.7", "master"))
def test_after_a_reverting_reset_the_snapshot_labels_each_port_with_what_xen_bound_it_to(xen):
    ports = traffic_step(hib(fix="reset", xen=xen).trace).domain(B).ports
    by_label = {p.label: p for p in ports}
    assert by_label["timer0"].state == "virq" and by_label["timer1"].state == "virq"
    assert all(p.state == "interdomain" for p in ports if p.label in ("xenstore", "console", "vbd"))


# --- FIFO -> FIFO and 2-level -> 2-level ----------------------------------------------------


def test_fifo_to_fifo_registers_other_frames_than_the_resumed_kernel_reads():
    t = hib(old_xen="4.4", xen="4.4").trace
    assert original_step(t).domain(A).kernel_abi == "fifo"
    original, boot = registered_frames(original_step(t), A), registered_frames(boot_step(t), B)
    assert original and boot and not original & boot
    resumed = resume_step(t).domain(B)
    assert resumed.kernel_abi == resumed.abi == "fifo"  # same ABI, other frames


def test_fifo_to_fifo_is_broken_too():
    t = hib(old_xen="4.4", xen="4.4").trace
    assert on_new_host(t)[1] == 0
    assert frames_written_since(t, image_step(t)) == registered_frames(boot_step(t), B)
    assert set(t.outcome.corrupted_frames) == registered_frames(boot_step(t), B)


def test_two_level_to_two_level_works():
    t = hib(old_xen="4.3", xen="4.3").trace
    assert all(d.abi == "2-level" for r in t.records for d in r.domains)
    assert all(c.rc == -Errno.ENOSYS for c in fifo_calls(t, A) + fifo_calls(t, B))
    sent, delivered = on_new_host(t)
    assert sent > 0 and delivered == sent
    assert t.outcome.stray_writes == 0 and t.outcome.verdict == "works"


# --- the trace itself ---------------------------------------------------------------------


def test_the_same_parameters_give_the_same_trace():
    params = make_params("hibernation", fix="reset", xen="master")
    first, second = execute(params).trace, execute(params).trace
    assert first == second
    assert first.lines() == second.lines()


def test_stepping_backwards_is_indexing():
    t = hib().trace
    assert [t[i] for i in range(len(t))] == list(t.records)
    assert t[-1] is t.records[-1]


def test_records_are_frozen():
    r = hib().trace[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.step = "rewritten"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.domains[0].abi = "fifo"  # type: ignore[misc]


def test_mutating_the_machine_after_the_run_changes_no_record():
    params = make_params("hibernation")
    run = execute(params)
    shown = run.world.shown[B]
    domain = shown.guest.domain
    for frame in domain.memory.frames.values():
        frame.data[:] = b"\xff" * len(frame.data)
        frame.content, frame.xen_writes = "scribbled", 10**6
    shown.kernel.ops, shown.kernel.crashed = None, "scribbled"
    shown.kernel.channels.clear()
    assert run.trace == execute(params).trace


@pytest.mark.parametrize("bad", [{"fix": "nope"}, {"errno": "EWHATEVER"}, {"guest_fallback": "sometimes"}])
def test_hibernation_params_refuse_unknown_values(bad):
    params_type = SCENARIOS["hibernation"].params
    with pytest.raises(ValueError):
        params_type(**bad)
    with pytest.raises(ValueError):
        make_params("hibernation", **bad)


# --- counts and closed channels are computed from the records -------------------------------


def test_a_reset_that_xen_refuses_closes_no_channel():
    """channels_closed comes from the records: the reset call's rc and the ports bound around
    it. An XSM policy that denies EVTCHNOP_reset leaves every port bound, and the list empty."""
    class DenyingReset(World):
        def host(self, name: str, version: str):
            xen = super().host(name, version)
            if name == "B":
                xen.xsm.deny(EVTCHNOP_reset, Errno.EPERM)
            return xen

    with mock.patch.object(scenario_module, "World", DenyingReset):
        t = SCENARIOS["hibernation"].run(make_params("hibernation", fix="reset", xen="master"))
    reset = record(t, "EVTCHNOP_reset")
    assert Call(B, "reset", -Errno.EPERM) in reset.calls
    assert {p.label for p in reset.domain(B).ports} >= {"xenstore", "console"}
    assert t.outcome.channels_closed == ()


def test_per_host_counts_add_up_to_the_outcomes_totals():
    for params in ({}, {"fix": "reset", "xen": "master"}, {"fix": "disable-fifo"}, {"old_xen": "4.4"}):
        o = hib(**params).trace.outcome
        assert sum(h.sent for h in o.hosts) == o.sent and sum(h.delivered for h in o.hosts) == o.delivered
        assert [h.host for h in o.hosts] == ["A", "B"]


def test_per_channel_counts_add_up_to_each_records_running_totals():
    t = hib(fix="reset", xen="master").trace
    sent = delivered = 0
    for r in t.records:
        sent += sum(c.sent for c in r.channels)
        delivered += sum(c.delivered for c in r.channels)
        assert (r.sent, r.delivered) == (sent, delivered), r.step


def test_resume_works_is_read_from_the_new_hosts_traffic_step():
    """Without a fix the old host's 12 delivered events hide nothing: host B's step shows 0."""
    broken, fixed = (channel_counts(traffic_step(hib(fix=fix).trace), B) for fix in ("none", "disable-fifo"))
    assert set(broken) == set(fixed) == {"timer0", "timer1", "xenstore", "console", "vbd", "resched1"}
    assert all(c.sent == 2 and c.unbound == 0 and c.delivered == 0 for c in broken.values())
    assert all(c.sent == 2 and c.unbound == 0 and c.delivered == 2 for c in fixed.values())


@pytest.mark.parametrize(("params", "ignored"), [
    ({"fix": "none"}, {"errno"}),
    ({"fix": "xsm", "errno": "EPERM"}, set()),
    ({"fix": "disable-fifo", "xen": "4.4"}, {"xen"}),
    ({"fix": "qemu", "xen": "master"}, {"xen", "errno"}),
    ({"fix": "qemu", "xen": "qemu"}, {"errno"}),
])
def test_the_trace_names_the_parameters_the_fix_does_not_use(params, ignored):
    t = hib(**params).trace
    assert {name for name, _ in t.ignored} == ignored
    if "xen" in ignored:
        assert dict(t.ignored)["xen"].endswith(f"on the {record(t, 'boot kernel').domain(B).xen} row")
