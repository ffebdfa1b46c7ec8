//! Which kernel arguments the node needs for its spec, decided from what
//! the running kernel has (pure; the facts come from `sriov_host::boot`).
//!
//! vfio-pci VFs need an IOMMU (or vfio's unsafe no-IOMMU mode). Upstream
//! adds `intel_iommu=on iommu=pt` (AMD: `iommu=pt`) and reboots the first
//! time any policy asks for vfio-pci whenever the command line lacks them,
//! even on a kernel whose IOMMU is already on. This daemon reboots only when
//! the IOMMU is really off and an argument can turn it on; when the
//! arguments are there and the IOMMU is still off (VT-d or AMD-Vi disabled
//! in the firmware) it says so instead of rebooting again and again.

use sriov_crds::node_state::Interface;
use sriov_host::boot::{BootFacts, CpuVendor};

/// The device type that needs an IOMMU.
pub const VFIO_PCI: &str = "vfio-pci";

/// What the spec needs from the kernel's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelArgs {
    /// Nothing (no vfio-pci VF, or the IOMMU is on).
    Satisfied,
    /// These arguments, then a reboot.
    Reboot(Vec<String>),
    /// No argument can help: the reason, for the status.
    Stuck(String),
}

/// The PFs (names or PCI addresses) whose VF groups use vfio-pci.
fn vfio_pfs(spec: &[Interface]) -> Vec<String> {
    spec.iter()
        .filter(|i| i.vf_groups.iter().any(|g| g.device_type == VFIO_PCI))
        .map(|i| {
            if i.name.is_empty() {
                i.pci_address.clone()
            } else {
                i.name.clone()
            }
        })
        .collect()
}

/// Whether `spec` has a vfio-pci VF group (only then are the kernel's facts
/// worth reading).
pub fn uses_vfio(spec: &[Interface]) -> bool {
    !vfio_pfs(spec).is_empty()
}

/// The decision for `spec` on a kernel described by `facts`.
pub fn needed(spec: &[Interface], facts: &BootFacts) -> KernelArgs {
    let pfs = vfio_pfs(spec);
    if pfs.is_empty() || facts.iommu || facts.noiommu {
        return KernelArgs::Satisfied;
    }
    let wanted: &[&str] = match facts.cpu {
        CpuVendor::Intel => &["intel_iommu=on", "iommu=pt"],
        // AMD-Vi is on by default where the firmware has it: no argument
        // turns on an IOMMU the firmware hides.
        CpuVendor::Amd | CpuVendor::Other => &[],
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|a| !facts.has_arg(a))
        .map(|a| a.to_string())
        .collect();
    if !missing.is_empty() {
        return KernelArgs::Reboot(missing);
    }
    let booted = if wanted.is_empty() {
        String::new()
    } else {
        format!(" although the kernel was booted with {}", wanted.join(" "))
    };
    KernelArgs::Stuck(format!(
        "vfio-pci VFs on {} need an IOMMU, and none is on{booted} (/sys/class/iommu is empty): \
         enable VT-d or AMD-Vi in the firmware, or load vfio with enable_unsafe_noiommu_mode=1 \
         (no isolation); not rebooting, since a reboot would not change it",
        pfs.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_crds::node_state::VfGroup;

    fn spec(device_type: &str) -> Vec<Interface> {
        vec![Interface {
            pci_address: "0000:3b:00.0".into(),
            name: "ens1f0".into(),
            num_vfs: 4,
            vf_groups: vec![VfGroup {
                device_type: device_type.into(),
                vf_range: "0-3".into(),
                resource_name: "dpdk".into(),
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    fn facts(cpu: CpuVendor, cmdline: &str, iommu: bool, noiommu: bool) -> BootFacts {
        BootFacts {
            cmdline: cmdline.split_whitespace().map(str::to_string).collect(),
            iommu,
            noiommu,
            cpu,
        }
    }

    #[test]
    fn only_vfio_pci_without_an_iommu_needs_arguments() {
        let intel_off = facts(CpuVendor::Intel, "ro quiet", false, false);
        assert_eq!(
            needed(&spec("netdevice"), &intel_off),
            KernelArgs::Satisfied
        );
        assert_eq!(
            needed(&spec(VFIO_PCI), &intel_off),
            KernelArgs::Reboot(vec!["intel_iommu=on".into(), "iommu=pt".into()])
        );
        // Only what is missing.
        let half = facts(CpuVendor::Intel, "ro iommu=pt", false, false);
        assert_eq!(
            needed(&spec(VFIO_PCI), &half),
            KernelArgs::Reboot(vec!["intel_iommu=on".into()])
        );
        // The IOMMU is on already (a default-on kernel): no reboot, unlike
        // upstream, which reboots to add arguments nothing needs.
        let on = facts(CpuVendor::Intel, "ro", true, false);
        assert_eq!(needed(&spec(VFIO_PCI), &on), KernelArgs::Satisfied);
        // No-IOMMU vfio (VMs, CI): works without one.
        let noiommu = facts(CpuVendor::Intel, "ro", false, true);
        assert_eq!(needed(&spec(VFIO_PCI), &noiommu), KernelArgs::Satisfied);
    }

    #[test]
    fn an_iommu_that_arguments_cannot_turn_on_is_reported_not_rebooted_for() {
        let booted = facts(CpuVendor::Intel, "intel_iommu=on iommu=pt", false, false);
        let KernelArgs::Stuck(why) = needed(&spec(VFIO_PCI), &booted) else {
            panic!("expected Stuck");
        };
        assert!(
            why.contains("ens1f0")
                && why.contains("although the kernel was booted with intel_iommu=on iommu=pt")
                && why.contains("firmware"),
            "{why}"
        );
        let amd = facts(CpuVendor::Amd, "ro", false, false);
        assert!(matches!(
            needed(&spec(VFIO_PCI), &amd),
            KernelArgs::Stuck(_)
        ));
    }
}
