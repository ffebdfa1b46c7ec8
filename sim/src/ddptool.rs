//! A stand-in for Intel's `ddptool`, for the PFs' `ddp_profile` in the node
//! description. DDP profiles are not in sysfs: tools read them with
//! `ddptool -l -a -j -s <pci>` (or devlink), so the simulator writes an
//! executable `ROOT/run/sriov-sim/ddptool` that answers that command the way
//! ddptool does: the inventory JSON for a PF with a profile, exit code 8
//! ("no profile") for any other device. Point the device plugin at it with
//! `SRIOV_DDPTOOL=ROOT/run/sriov-sim/ddptool`.

use std::io;
use std::path::{Path, PathBuf};

use crate::node::NodeSpec;

/// Where the stand-in goes, relative to the host root.
pub const DDPTOOL_PATH: &str = "run/sriov-sim/ddptool";

/// The inventory JSON ddptool prints for one PF.
pub fn inventory_json(spec: &NodeSpec, address: &str) -> Option<String> {
    let pf = spec.pfs.iter().find(|p| p.address == address)?;
    let profile = pf.ddp_profile.as_ref()?;
    let nic = pf.nic();
    let v = serde_json::json!({"DDPInventory": {
        "device": format!("{:04x}", nic.pf_device),
        "address": pf.address,
        "name": pf.ifname,
        "display": nic.description,
        "DDPpackage": {"track_id": "80000008", "version": "1.0.3.0", "name": profile},
    }});
    Some(v.to_string())
}

/// The stand-in's shell script.
pub fn script(spec: &NodeSpec) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# sriov-sim stand-in for Intel ddptool: ddptool -l -a -j -s <pci>\n\
         dev=\"\"\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in\n    -s) dev=\"$2\"; shift 2 ;;\n    *) shift ;;\n  esac\ndone\ncase \"$dev\" in\n",
    );
    for pf in &spec.pfs {
        if let Some(json) = inventory_json(spec, &pf.address) {
            // the JSON holds no single quotes: serde_json escapes nothing
            // into them, and profile names with one are quoted below
            let quoted = json.replace('\'', "'\\''");
            s.push_str(&format!("  {}) printf '%s\\n' '{quoted}' ;;\n", pf.address));
        }
    }
    s.push_str("  *) echo \"ddptool: no DDP profile loaded on $dev\" >&2; exit 8 ;;\nesac\n");
    s
}

/// Writes the stand-in under `root` (mode 0755); returns its path.
pub fn write(root: &Path, spec: &NodeSpec) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join(DDPTOOL_PATH);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, script(spec))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_ddptool() {
        let mut spec = NodeSpec::mixed();
        spec.pfs[2].ddp_profile = Some("GTPv1-C/U IPv4/IPv6 payload's".into());
        let tmp = tempfile::tempdir().unwrap();
        let p = write(tmp.path(), &spec).unwrap();
        let run = |dev: &str| {
            std::process::Command::new(&p)
                .args(["-l", "-a", "-j", "-s", dev])
                .output()
                .unwrap()
        };
        let out = run("0000:5e:00.0");
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["DDPInventory"]["DDPpackage"]["name"],
            "GTPv1-C/U IPv4/IPv6 payload's"
        );
        assert_eq!(v["DDPInventory"]["device"], "1572");
        assert_eq!(run("0000:3b:00.0").status.code(), Some(8));
    }
}
