//! How much of each function a read of sysfs fills in: what a whole-node
//! scan ([`crate::scan`]), a PCI function read and a netdev read share.

/// How much of each function a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Everything [`crate::PciFunction`] and [`crate::Netdev`] hold.
    #[default]
    Full,
    /// What selecting and pooling devices needs, in about half the system
    /// calls per VF: ids and class, driver, NUMA node, IOMMU group, ACPI
    /// index, SR-IOV capability and links, RDMA device names, and of each
    /// netdev its name, link type and `phys_port_name` (so representors are
    /// still told apart). Not read, left `None` (`operstate`: `Unknown`):
    /// `driver_override`; the subsystem ids when the function has no
    /// `uevent`; netdev MAC, MTU, operstate, carrier, speed, ifindex and
    /// `phys_switch_id` (read them with [`crate::Netdev::read`] where needed).
    Selection,
}
