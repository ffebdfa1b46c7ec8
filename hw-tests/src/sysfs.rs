//! Sysfs reads and writes that keep the path and errno.

use std::path::{Path, PathBuf};

use crate::HwError;

/// Reads a sysfs attribute, trimmed.
pub fn read(path: impl AsRef<Path>) -> Result<String, HwError> {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| HwError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })
}

/// Reads a sysfs attribute as an unsigned number.
pub fn read_u32(path: impl AsRef<Path>) -> Result<u32, HwError> {
    let path = path.as_ref();
    let s = read(path)?;
    s.parse().map_err(|e| HwError::Parse {
        what: path.display().to_string(),
        detail: format!("{s:?}: {e}"),
    })
}

/// Writes a value to a sysfs attribute in one `write(2)`, as `echo` does.
pub fn write(path: impl AsRef<Path>, value: &str) -> Result<(), HwError> {
    let path = path.as_ref();
    std::fs::write(path, value).map_err(|source| HwError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The last component of a symlink's target (`driver` → `igbvf`), or `None`
/// when the link does not exist.
pub fn link_name(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_link(path.as_ref())
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// The PCI device directory of a PCI address.
pub fn pci_dir(pci: &str) -> PathBuf {
    Path::new("/sys/bus/pci/devices").join(pci)
}

/// The netdev names under a PCI function's `net/`, sorted.
pub fn netdevs(pci: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pci_dir(pci).join("net"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The driver a PCI function is bound to.
pub fn driver(pci: &str) -> Option<String> {
    link_name(pci_dir(pci).join("driver"))
}

/// The IOMMU group number of a PCI function.
pub fn iommu_group(pci: &str) -> Option<String> {
    link_name(pci_dir(pci).join("iommu_group"))
}

/// Binds a PCI function the kernel's safe way, by hand: `driver_override`
/// (`None` clears it), unbind from the current driver, `drivers_probe`.
/// The project's own version is `sriov_host::driver::bind`; this one is the
/// reference the hw-tests compare it with.
pub fn override_bind(pci: &str, driver: Option<&str>) -> Result<(), HwError> {
    let dir = pci_dir(pci);
    write(dir.join("driver_override"), driver.unwrap_or("\n"))?;
    if self::driver(pci).is_some() {
        write(dir.join("driver/unbind"), pci)?;
    }
    write("/sys/bus/pci/drivers_probe", pci)
}
