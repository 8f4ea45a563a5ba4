"""The table of Xen versions and variants: rows are eras, looked up by release.

Each field of each row is checked here against the release that introduced it (the tag named
in the row's ``release`` and the commit in the field's comment in evtsim/versions.py); the
behaviour a field switches is tested from first principles in test_rows.py, test_reset.py,
test_qemu.py and the error table.
"""

import pytest

from evtsim import XEN_VERSIONS, Errno, xen_version
from evtsim.versions import Bit7, ResetRevert

ROWS_IN_RELEASE_ORDER = ["4.3", "4.4", "4.5", "4.7", "4.8", "4.15", "4.16", "4.17", "4.18", "master"]


@pytest.mark.parametrize(
    "release, row",
    [("4.2", "4.3"), ("4.3", "4.3"), ("4.4", "4.4"), ("4.4.4", "4.4"), ("4.6", "4.5"), ("4.7", "4.7"),
     ("4.9", "4.8"), ("4.10", "4.8"), ("4.14", "4.8"), ("4.14.1", "4.8"), ("4.15", "4.15"), ("4.15.5", "4.15"),
     ("4.16", "4.16"), ("4.17", "4.17"), ("4.18", "4.18"), ("4.20", "4.18"), ("4.21", "master"), ("5.0", "master"),
     ("master", "master"), ("patch-v4", "patch-v4"), ("4.14-xsa", "4.14-xsa")],
)
def test_a_release_maps_to_the_row_of_its_era(release, row):
    """x.y and x.y.z map to the row of x.y.0; a point release's backports are a variant row."""
    assert xen_version(release).name == row


def test_an_unknown_version_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown Xen version 'banana'.*master"):
        xen_version("banana")


@pytest.mark.parametrize("misuse", [4.8, None, 15])
def test_a_version_that_is_not_a_string_is_a_type_error(misuse):
    with pytest.raises(TypeError, match="row name or a release string"):
        xen_version(misuse)


def test_each_era_row_names_the_release_tag_it_was_checked_against():
    """Rows for releases carry their RELEASE-x.y.0 tag; master and the variants carry none."""
    tags = {name: XEN_VERSIONS[name].release for name in ROWS_IN_RELEASE_ORDER}
    assert tags == {"4.3": "RELEASE-4.3.0", "4.4": "RELEASE-4.4.0", "4.5": "RELEASE-4.5.0",
                    "4.7": "RELEASE-4.7.0", "4.8": "RELEASE-4.8.0", "4.15": "RELEASE-4.15.0",
                    "4.16": "RELEASE-4.16.0", "4.17": "RELEASE-4.17.0", "4.18": "RELEASE-4.18.0", "master": ""}


def column(field: str) -> list:
    """One field down the era rows, oldest first."""
    return [getattr(XEN_VERSIONS[name], field) for name in ROWS_IN_RELEASE_ORDER]


#: field -> its value in 4.3, 4.4, 4.5, 4.7, 4.8, 4.15, 4.16, 4.17, 4.18, master (commit in versions.py).
N, Y = False, True
ERA_COLUMNS = {
    "fifo": [N, Y, Y, Y, Y, Y, Y, Y, Y, Y],  # 88910061ec61, 4.4
    "max_evtchn_port": [N, Y, Y, Y, Y, Y, Y, Y, Y, Y],  # a77eb86f44, 4.4
    "expand_not_fifo": [Errno.ENOSYS] * 4 + [Errno.EOPNOTSUPP] * 6,  # a66765eb06, 4.8
    "reset_revert": [ResetRevert.NEVER, ResetRevert.NEVER, ResetRevert.SELF] + [ResetRevert.ALWAYS] * 7,
    "soft_reset": [N, N, N, Y, Y, Y, Y, Y, Y, Y],  # 1a043f9dc7, 4.7
    "busy_port_skipped": [N, N, N, Y, Y, Y, Y, Y, Y, Y],  # 78e24c269b0a, 4.7
    "reset_continuation": [N, N, N, N, N, Y, Y, Y, Y, Y],  # XSA-344 2785b2a9e0 + XSA-343 8d385b247b, 4.15
    "usable_gate": [N, N, N, N, N, Y, Y, Y, Y, Y],  # XSA-343 e045199c7c, 4.15
    "dynamic_2l_limit": [Y, N, N, N, N, Y, Y, Y, Y, Y],  # MAX_EVTCHNS(d) in 4.3; XSA-342 62bcdc4edb, 4.15
    "port_valid_below_limit": [Y, Y, Y, Y, Y, N, N, N, N, N],  # XSA-338 e59ce972d1, 4.15
    "poll_checks_usable": [N, N, N, N, N, Y, Y, Y, Y, Y],  # "honor evtchn_usable() in do_poll", 4.15
    "bit7": [Bit7.UNKNOWN] * 6 + [Bit7.VPMU] * 4,  # dbb948110a, 4.16
    "no_control_block_sets_pending": [Y, Y, Y, Y, Y, Y, Y, N, N, N],  # 8aa0e9d2d1, 4.17
    "singleshot_future_etime": [Y, Y, Y, Y, Y, Y, Y, Y, N, N],  # 19c6cbd909, 4.18
    "global_virq_owner": [N, N, N, N, N, N, N, N, N, Y],  # 2025 series, after 4.20
    "fifo_compiled_in": [Y] * 10,  # CONFIG_EVTCHN_FIFO=n is the fifo-off variant
}


@pytest.mark.parametrize("field", ERA_COLUMNS)
def test_each_behaviour_changes_at_the_release_that_changed_it(field):
    """Every field of every era row, against the first release tag that contains its commit."""
    assert column(field) == ERA_COLUMNS[field]


def test_the_xen_era_rows_have_none_of_qemus_divergences():
    """QEMU's fields keep Xen's behaviour on every Xen row, released or patched."""
    qemu_fields = {"fixed_port_table": False, "foreign_dom_esrch": False, "peers_qemu_or_self": False,
                   "interdomain_sets_pending": True, "pirq_bound_errno": Errno.EEXIST,
                   "close_free_errno": Errno.EINVAL, "unmask_free_errno": None,
                   "bind_vcpu_checks_port_first": False, "bind_vcpu_raises_pending": False}
    for row in XEN_VERSIONS.values():
        if row.name != "qemu":
            assert {f: getattr(row, f) for f in qemu_fields} == qemu_fields, row.name


def test_qemu_is_2_level_only_without_a_port_limit_knob_or_reset_continuation():
    """hw/i386/kvm/xen_evtchn.c: no FIFO ops, a fixed table of EVTCHN_2L_NR_CHANNELS, and
    EVTCHNOP_reset_cont falls to -ENOSYS (xen-emu.c handles only the public sub-ops)."""
    qemu = xen_version("qemu")
    assert (qemu.fifo, qemu.max_evtchn_port, qemu.reset_continuation, qemu.fixed_port_table) == (N, N, N, Y)


def test_the_backport_variant_is_the_4_8_row_with_4_15s_xsa_fixes():
    """The 2020 XSA-338/342/343/344 fixes reached the 4.10-4.14 stable branches (4.14.1): only
    those fields differ from the 4.8 row."""
    era, backports = xen_version("4.8"), xen_version("4.14-xsa")
    changed = {f for f in era.__dataclass_fields__ if getattr(era, f) != getattr(backports, f)}
    assert changed == {"name", "release", "description", "reset_continuation", "usable_gate",
                       "dynamic_2l_limit", "port_valid_below_limit"}
    assert all(getattr(backports, f) == getattr(xen_version("4.15"), f) for f in changed - {"name", "release",
                                                                                            "description"})


def test_fifo_exists_from_4_4_except_in_qemu_and_a_fifo_less_build():
    """88910061ec61 (4.4) added the FIFO ops; QEMU and CONFIG_EVTCHN_FIFO=n lack them."""
    available = {name for name, row in XEN_VERSIONS.items() if row.fifo_available}
    assert available == set(XEN_VERSIONS) - {"4.3", "qemu", "fifo-off"}


def test_bit_7_means_the_patch_flag_only_in_the_patch_rows():
    """The series was never merged; upstream gave bit 7 to vPMU in 4.16."""
    assert xen_version("patch-v4").bit7 is Bit7.DISABLE_FIFO
    assert xen_version("patch-v5").bit7 is Bit7.EVTCHN_FIFO
    assert xen_version("master").bit7 is Bit7.VPMU
    assert xen_version("4.15").bit7 is Bit7.UNKNOWN


def test_the_patch_rows_are_4_15_dev_with_the_2020_xsa_fixes_already_in():
    """v4 and v5 were posted in Nov/Dec 2020, after XSA-342/343/344 landed on staging."""
    for name in ("patch-v4", "patch-v5"):
        row = xen_version(name)
        assert (row.reset_continuation, row.usable_gate, row.dynamic_2l_limit) == (Y, Y, Y)
        assert (row.no_control_block_sets_pending, row.global_virq_owner) == (Y, N)
