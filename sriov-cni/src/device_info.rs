//! Device-info files (device-info-spec 1.1.0).
//!
//! Multus (the "NPWG implementation") hands a CNI plugin that declares the
//! `CNIDeviceInfoFile` capability a path unique per attachment in
//! `runtimeConfig.CNIDeviceInfoFile`, under
//! `/var/run/k8s.cni.cncf.io/devinfo/cni/`. Before calling the plugin it
//! copies the device plugin's file
//! (`/var/run/k8s.cni.cncf.io/devinfo/dp/<resource>-<pci>-device.json`)
//! there when the network has a `resourceName`; after ADD it reads the file
//! into the pod's `network-status` annotation, and it deletes it after DEL.
//!
//! This plugin, as the spec's CNI-plugin side:
//! - reads the file when it exists, and takes the VF from its
//!   `pci.pci-address` when the config has no `deviceID`;
//! - writes it when it does not exist (`type` `pci`, `pci-address`,
//!   `pf-pci-address`), records that in the attachment's state, and
//!   removes it on DEL (and when ADD fails), so a file it created never
//!   outlives the attachment even without Multus.
//!
//! Paths are resolved under the host root. The Go sriov-cni does not touch
//! these files.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sriov_host::{HostRoot, PciAddress};

use crate::error::{CniError, Code, Result};

/// The spec version this plugin writes.
pub const SPEC_VERSION: &str = "1.1.0";

/// Where Multus puts CNI device-info files.
pub const CNI_DIR: &str = "/var/run/k8s.cni.cncf.io/devinfo/cni";

/// The `pci` map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PciInfo {
    /// The device's PCI address.
    #[serde(rename = "pci-address", default)]
    pub pci_address: String,
    /// The PF's PCI address.
    #[serde(
        rename = "pf-pci-address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pf_pci_address: Option<String>,
    /// The RDMA device, when the device plugin named one.
    #[serde(
        rename = "rdma-device",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rdma_device: Option<String>,
    /// The vhost-net device, when the device plugin named one.
    #[serde(rename = "vhost-net", default, skip_serializing_if = "Option::is_none")]
    pub vhost_net: Option<String>,
    /// The VF representor, when known.
    #[serde(
        rename = "representor-device",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub representor_device: Option<String>,
}

/// A device-info document (only the `pci` type is interpreted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `pci`, `vdpa`, `vhost-user`, `memif`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The spec version.
    pub version: String,
    /// The PCI details (`type` `pci`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci: Option<PciInfo>,
}

impl DeviceInfo {
    /// The document this plugin writes for a VF.
    pub fn for_vf(vf: &PciAddress, pf: &PciAddress) -> DeviceInfo {
        DeviceInfo {
            kind: "pci".into(),
            version: SPEC_VERSION.into(),
            pci: Some(PciInfo {
                pci_address: vf.to_string(),
                pf_pci_address: Some(pf.to_string()),
                ..Default::default()
            }),
        }
    }

    /// The PCI address it describes (`type` `pci`, or a `pci` map with an
    /// address).
    pub fn pci_address(&self) -> Option<PciAddress> {
        self.pci
            .as_ref()
            .and_then(|p| PciAddress::parse(&p.pci_address))
    }
}

/// Checks a `runtimeConfig.CNIDeviceInfoFile` path: absolute, with a file
/// name, no `..` (it is joined under the host root and must stay there).
pub fn validate_path(p: &str) -> Result<PathBuf> {
    let path = PathBuf::from(p);
    let bad = |why: &str| {
        CniError::config(format!(
            "runtimeConfig.CNIDeviceInfoFile {p:?} {why}: expected an absolute path such as {CNI_DIR}/<network>-<container>_<ifname>"
        ))
    };
    if !path.is_absolute() {
        return Err(bad("is not absolute"));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(bad("contains . or .."));
    }
    if path.file_name().is_none() {
        return Err(bad("names no file"));
    }
    Ok(path)
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> CniError {
    CniError::new(
        Code::Io,
        format!("{what} {}", path.display()),
        format!("{e} (errno {})", e.raw_os_error().unwrap_or(0)),
    )
}

/// Reads the device-info file at `path` (a node path) under `root`;
/// `Ok(None)` when it does not exist.
pub fn read(root: &HostRoot, path: &Path) -> Result<Option<DeviceInfo>> {
    let full = root.join(path);
    let bytes = match std::fs::read(&full) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read the device-info file", &full, &e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        CniError::new(
            Code::Decode,
            format!("the device-info file {} is not valid", full.display()),
            format!("{e}; expected device-info-spec JSON {{\"type\",\"version\",\"pci\"}}"),
        )
    })
}

/// Writes `info` to `path` under `root` atomically (the directory is
/// created; mode 0444 as the spec's reference library writes it). Fails if
/// the file already exists (it is Multus' copy of the device plugin's).
pub fn write(root: &HostRoot, path: &Path, info: &DeviceInfo) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let full = root.join(path);
    let dir = full.parent().unwrap_or(Path::new("/"));
    // 0755 whatever the umask: readable by the pod's consumers, writable
    // only by root.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| io_err("cannot create the device-info directory", dir, &e))?;
    let body = serde_json::to_vec(info).expect("device info serializes");
    // link(2) instead of rename(2): never replaces a file that appeared
    // meanwhile.
    let opts = sriov_host::files::WriteOptions {
        dir_mode: None,
        publish: sriov_host::files::Publish::NoReplace,
        ..sriov_host::files::WriteOptions::runtime(0o444)
    };
    sriov_host::files::write_atomic(&full, &body, &opts)
        .map_err(|e| io_err("cannot write the device-info file", &full, &e.into()))
}

/// Removes the file at `path` under `root`; a missing file is fine.
pub fn remove(root: &HostRoot, path: &Path) -> Result<()> {
    let full = root.join(path);
    match std::fs::remove_file(&full) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("cannot remove the device-info file", &full, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci(s: &str) -> PciAddress {
        PciAddress::parse(s).unwrap()
    }

    #[test]
    fn writes_the_spec_format_and_reads_it_back() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(d.path());
        let p = Path::new("/var/run/k8s.cni.cncf.io/devinfo/cni/net-abc_net1");
        let info = DeviceInfo::for_vf(&pci("0000:3b:02.1"), &pci("0000:3b:00.0"));
        write(&root, p, &info).unwrap();
        let full = d
            .path()
            .join("var/run/k8s.cni.cncf.io/devinfo/cni/net-abc_net1");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&full).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "pci", "version": "1.1.0",
                "pci": {"pci-address": "0000:3b:02.1", "pf-pci-address": "0000:3b:00.0"}})
        );
        let back = read(&root, p).unwrap().unwrap();
        assert_eq!(back, info);
        assert_eq!(back.pci_address(), Some(pci("0000:3b:02.1")));
        // No temporary file left; a second write does not replace it.
        assert_eq!(
            std::fs::read_dir(full.parent().unwrap()).unwrap().count(),
            1
        );
        let other = DeviceInfo::for_vf(&pci("0000:3b:02.2"), &pci("0000:3b:00.0"));
        let e = write(&root, p, &other).unwrap_err();
        assert_eq!(e.code, Code::Io);
        assert!(e.details.contains("exists"), "{e}");
        assert_eq!(read(&root, p).unwrap().unwrap(), info);
        remove(&root, p).unwrap();
        assert!(!full.exists());
        remove(&root, p).unwrap();
        assert_eq!(read(&root, p).unwrap(), None);
    }

    #[test]
    fn reads_a_device_plugin_file() {
        // As the Go device plugin writes it (Multus copies it verbatim).
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(d.path());
        let p = Path::new("/var/run/k8s.cni.cncf.io/devinfo/cni/x");
        std::fs::create_dir_all(d.path().join("var/run/k8s.cni.cncf.io/devinfo/cni")).unwrap();
        std::fs::write(
            root.join(p),
            r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.4","rdma-device":"mlx5_4"}}"#,
        )
        .unwrap();
        let i = read(&root, p).unwrap().unwrap();
        assert_eq!(i.pci_address(), Some(pci("0000:3b:02.4")));
        assert_eq!(i.pci.unwrap().rdma_device.as_deref(), Some("mlx5_4"));
        std::fs::write(root.join(p), b"{not json").unwrap();
        assert_eq!(read(&root, p).unwrap_err().code, Code::Decode);
        std::fs::write(root.join(p), br#"{"type":"vhost-user","version":"1.1.0"}"#).unwrap();
        assert_eq!(read(&root, p).unwrap().unwrap().pci_address(), None);
    }

    #[test]
    fn path_rules() {
        assert!(validate_path("/var/run/k8s.cni.cncf.io/devinfo/cni/n-c_net1").is_ok());
        for bad in ["relative/x", "/var/run/../../etc/passwd", "/", "./x"] {
            let e = validate_path(bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig, "{bad}");
            assert!(e.msg.contains("CNIDeviceInfoFile"), "{e}");
        }
    }
}
