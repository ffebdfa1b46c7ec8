//! A named network namespace (`ip netns add`) deleted on drop. Physical
//! netdevs (VFs) left inside go back to the initial namespace when it is
//! deleted, as the kernel does for every non-virtual device.

use crate::{HwError, iproute::ip, unique_name};

/// A network namespace under `/run/netns`, deleted on drop.
#[derive(Debug)]
pub struct NetnsGuard {
    name: String,
}

impl NetnsGuard {
    /// Creates a namespace with a name unique to this process.
    pub fn new(prefix: &str) -> Result<Self, HwError> {
        let name = unique_name(prefix);
        ip(&["netns", "add", &name])?;
        Ok(NetnsGuard { name })
    }

    /// The namespace's name (for `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's path (for opening it as an fd).
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}
