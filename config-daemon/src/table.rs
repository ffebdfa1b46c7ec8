//! The node's PFs and VFs as a text table (`sriov-config-daemon show`).

use sriov_crds::InterfaceExt;

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// One line per PF, then one indented line per VF.
pub fn render(ifaces: &[InterfaceExt]) -> String {
    let mut out = format!(
        "{:<14} {:<13} {:<10} {:<9} {:>5}  {:<17} {}\n",
        "PCI", "NAME", "DRIVER", "VENDOR", "MTU", "MAC", "VFS"
    );
    for pf in ifaces {
        out.push_str(&format!(
            "{:<14} {:<13} {:<10} {:<9} {:>5}  {:<17} {}/{}\n",
            pf.pci_address,
            or_dash(&pf.name),
            or_dash(&pf.driver),
            format!("{}:{}", pf.vendor, pf.device_id),
            pf.mtu,
            or_dash(&pf.mac),
            pf.num_vfs,
            pf.total_vfs
        ));
        for vf in &pf.vfs {
            out.push_str(&format!(
                "  vf{:<3}{:<9} {:<13} {:<10} {:<9} {:>5}  {:<17}\n",
                vf.vf_id,
                format!(
                    " {}",
                    &vf.pci_address[vf.pci_address.len().saturating_sub(7)..]
                ),
                or_dash(&vf.name),
                or_dash(&vf.driver),
                format!("{}:{}", vf.vendor, vf.device_id),
                if vf.mtu == 0 {
                    "-".to_string()
                } else {
                    vf.mtu.to_string()
                },
                or_dash(&vf.mac),
            ));
        }
    }
    out
}
