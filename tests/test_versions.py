"""The table of Xen versions and variants: rows are eras, looked up by release."""

import pytest

from evtsim import XEN_VERSIONS, Errno, xen_version
from evtsim.versions import Bit7, ResetRevert


@pytest.mark.parametrize(
    "release, row",
    [("4.2", "4.3"), ("4.3", "4.3"), ("4.4", "4.4"), ("4.4.4", "4.4"), ("4.6", "4.5"), ("4.7", "4.7"),
     ("4.10", "4.8"), ("4.16", "4.8"), ("4.17", "4.17"), ("4.20", "4.17"), ("4.21", "master"),
     ("5.0", "master"), ("master", "master"), ("patch-v4", "patch-v4")],
)
def test_a_release_maps_to_the_row_of_its_era(release, row):
    assert xen_version(release).name == row


def test_an_unknown_version_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown Xen version 'banana'.*master"):
        xen_version("banana")


def test_fifo_exists_from_4_4_except_in_qemu_and_a_fifo_less_build():
    """88910061ec61 (4.4) added the FIFO ops; QEMU and CONFIG_EVTCHN_FIFO=n lack them."""
    available = {name for name, row in XEN_VERSIONS.items() if row.fifo_available}
    assert available == set(XEN_VERSIONS) - {"4.3", "qemu", "fifo-off"}


def test_expand_array_before_fifo_changed_errno_in_4_8():
    """a66765eb06 replaced the bogus -ENOSYS with -EOPNOTSUPP (released in 4.8)."""
    assert [xen_version(v).expand_not_fifo for v in ("4.4", "4.7", "4.8", "master")] == [
        Errno.ENOSYS, Errno.ENOSYS, Errno.EOPNOTSUPP, Errno.EOPNOTSUPP]


def test_reset_reverts_never_then_for_self_then_always():
    """4.4 kept FIFO; 400b3bd642 (4.5) reverted for DOMID_SELF; 546d558a7a (4.7) always."""
    assert [xen_version(v).reset_revert for v in ("4.4", "4.5", "4.7", "master")] == [
        ResetRevert.NEVER, ResetRevert.SELF, ResetRevert.ALWAYS, ResetRevert.ALWAYS]


def test_bit_7_means_the_patch_flag_only_in_the_patch_rows():
    """The series was never merged; upstream gave bit 7 to vPMU in 4.16."""
    assert xen_version("patch-v4").bit7 is Bit7.DISABLE_FIFO
    assert xen_version("patch-v5").bit7 is Bit7.EVTCHN_FIFO
    assert xen_version("master").bit7 is Bit7.VPMU
    assert xen_version("4.8").bit7 is Bit7.UNKNOWN
