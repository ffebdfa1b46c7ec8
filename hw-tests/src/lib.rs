//! What the hardware-lane tests share: which PF to use (from the
//! environment), a lock so tests in one binary never use a PF at the same
//! time, sysfs reads and writes that keep the errno, `ip` (iproute2) calls,
//! and guards that restore the PF's VF count and delete network namespaces
//! even when a test fails.
//!
//! The tests in `tests/` run on any SR-IOV PF the kernel drives:
//! - in the QEMU lane (`hw-tests/run-vm.sh`), on two emulated Intel 82576
//!   (`igb`) PFs; the guest's init sets `SRIOV_HW_PF`, `SRIOV_HW_PF2` and
//!   `SRIOV_HW_REQUIRED=1`;
//! - on real NICs, when the user sets `SRIOV_HW_PF` (see docs/hw-tests.md).
//!
//! Without `SRIOV_HW_PF` a test prints `SKIP` and passes, unless
//! `SRIOV_HW_REQUIRED=1`, in which case it fails.
//!
//! Modules:
//! - [`cni`]: running a CNI plugin binary as a container runtime does.
//! - [`dpdk_bind`]: running the project's `dpdk-bind` binary.
//! - [`iproute`]: iproute2's `ip`, the reference for the project's netlink code.
//! - [`netns`]: a named network namespace, deleted on drop.
//! - [`pf`](mod@pf): the PFs under test, a lock, and a guard restoring their VF count.
//! - [`sysfs`]: sysfs reads and writes that keep the path and errno.

pub mod cni;
pub mod dpdk_bind;
pub mod iproute;
pub mod netns;
pub mod pf;
pub mod sysfs;

use std::path::PathBuf;

pub use pf::{HwPf, NumVfsGuard, PfLock, pf, pf2};

/// What failed in a hardware-lane helper.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// A sysfs (or other file) read or write failed.
    #[error("{op} {path}: {source} (errno {errno})", errno = source.raw_os_error().unwrap_or(0))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A command could not be started or exited non-zero.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// Something the kernel should do did not happen in time.
    #[error("timed out after {secs:.1}s waiting for {what}")]
    Timeout { what: String, secs: f64 },
    /// The kernel or a tool reported something this code cannot read.
    #[error("cannot parse {what}: {detail}")]
    Parse { what: String, detail: String },
}

impl HwError {
    /// The errno of a failed read or write, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            HwError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `secs`.
pub fn wait_for<T>(
    what: &str,
    secs: f64,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, HwError> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed().as_secs_f64() > secs {
            return Err(HwError::Timeout {
                what: what.to_string(),
                secs,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A binary of this workspace the tests run: the path in env var `var`,
/// else `name` next to the test binaries in cargo's target directory
/// (`target/<profile>/<name>`, there after `cargo build -p <crate>`), else
/// `name` on `PATH`.
pub fn project_binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let beside = exe.parent()?.parent()?.join(name);
    if beside.is_file() {
        return Some(beside);
    }
    sriov_sim::lanes::find_in_path(name)
}

/// [`project_binary`] for `test`: the binary, or `None` after printing
/// `SKIP` with what to build; a panic instead when `SRIOV_HW_REQUIRED=1`
/// (the QEMU lane, where a missing binary is a broken lane). `package` is
/// the cargo package that builds `name`.
pub fn binary_for(test: &str, var: &str, name: &str, package: &str) -> Option<PathBuf> {
    if let Some(b) = project_binary(var, name) {
        return Some(b);
    }
    if std::env::var("SRIOV_HW_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{test}: no {name} binary (set {var} or cargo build -p {package})");
    }
    eprintln!("SKIP {test}: no {name} binary (cargo build -p {package})");
    None
}

/// A name unique to this process and call, for netns and interfaces
/// (at most 15 bytes, the kernel's interface name limit).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    name.chars().take(15).collect()
}

/// A fresh directory under the system temp dir (named by
/// [`unique_name`]), removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `<tmp>/<unique_name(prefix)>`.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let dir = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
