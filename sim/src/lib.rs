//! A simulated SR-IOV node for tests, benchmarks and the demo.
//!
//! - [`tree`]: a builder that lays out a node's sysfs exactly as the kernel
//!   does (real symlinks for `driver`, `physfn`, `virtfnN`, `iommu_group`,
//!   `bus/pci/devices`, `class/net`), into any [`tree::TreeSink`].
//! - [`lanes`]: how tests that need root, FUSE, network namespaces or QEMU
//!   decide to run or skip, and how CI turns a skip into a failure.

pub mod lanes;
pub mod tree;
