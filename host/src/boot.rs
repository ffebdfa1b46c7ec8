//! Kernel command line, IOMMU state, boot-loader arguments and the node
//! reboot: what the config daemon needs when a policy asks for something the
//! running kernel cannot do (vfio-pci VFs without an IOMMU).
//!
//! Reads go through the [`HostRoot`] (`proc/cmdline`, `proc/cpuinfo`,
//! `sys/class/iommu`, the vfio module's no-IOMMU parameter). Writes are the
//! host's own tools, run in the host root (`chroot`, unless the root is `/`),
//! as upstream sriov-network-operator runs them:
//!
//! - `grubby --update-kernel=ALL --args=…` (RHEL, Fedora, CentOS);
//! - `rpm-ostree kargs --append=…` (Fedora CoreOS and other ostree hosts);
//! - Debian and Ubuntu (`update-grub`): a drop-in
//!   `/etc/default/grub.d/99-sriov-rs.cfg` appending to
//!   `GRUB_CMDLINE_LINUX`, then `update-grub` (upstream has no Debian path).
//!
//! The reboot is a transient systemd unit (`systemd-run --unit
//! sriov-network-config-daemon-reboot`) that stops the kubelet first, as
//! upstream, so the daemon's own pod is not the process doing it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::root::HostRoot;

/// The drop-in the Debian/Ubuntu path writes under `/etc/default/grub.d/`.
pub const GRUB_DROPIN: &str = "etc/default/grub.d/99-sriov-rs.cfg";
/// The transient unit that reboots the node.
pub const REBOOT_UNIT: &str = "sriov-network-config-daemon-reboot";

/// Errors of the boot-loader and reboot operations.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The host has none of grubby, rpm-ostree and update-grub.
    #[error(
        "no supported boot-loader tool under {root}: looked for grubby, rpm-ostree and update-grub; add the kernel arguments {args} by hand and reboot the node"
    )]
    NoTool { root: PathBuf, args: String },
    /// The GRUB drop-in could not be written.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The boot-loader tool or the reboot command failed (its output
    /// follows).
    #[error("running {command}: {message}")]
    Command { command: String, message: String },
}

/// The CPU vendor, from `/proc/cpuinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuVendor {
    Intel,
    Amd,
    Other,
}

/// What the node's kernel was booted with and whether it has an IOMMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFacts {
    /// `/proc/cmdline`, as words.
    pub cmdline: Vec<String>,
    /// An IOMMU is on: `/sys/class/iommu` has an entry (`dmar*` on Intel,
    /// `ivhd*` on AMD), or the kernel made IOMMU groups other than vfio's
    /// no-IOMMU ones.
    pub iommu: bool,
    /// vfio's no-IOMMU mode is on (`enable_unsafe_noiommu_mode` is `Y`):
    /// vfio-pci works without an IOMMU, unsafely, as in VMs and CI.
    pub noiommu: bool,
    pub cpu: CpuVendor,
}

impl BootFacts {
    /// Reads the facts under `root`; what cannot be read counts as absent.
    pub fn read(root: &HostRoot) -> Self {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        let cmdline = read("proc/cmdline")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let registered = std::fs::read_dir(root.join("sys/class/iommu"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        let grouped = std::fs::read_dir(root.join("sys/kernel/iommu_groups"))
            .map(|d| {
                d.flatten().any(|g| {
                    std::fs::read_to_string(g.path().join("name"))
                        .map_or(true, |n| n.trim() != crate::devnodes::NOIOMMU_GROUP_NAME)
                })
            })
            .unwrap_or(false);
        let iommu = registered || grouped;
        let noiommu = matches!(
            read("sys/module/vfio/parameters/enable_unsafe_noiommu_mode").trim(),
            "Y" | "1"
        );
        let cpu = cpu_vendor(&read("proc/cpuinfo"));
        Self {
            cmdline,
            iommu,
            noiommu,
            cpu,
        }
    }

    /// Whether the running kernel's command line has `arg` (the exact word,
    /// or for `key=value` the same key with the same value).
    pub fn has_arg(&self, arg: &str) -> bool {
        self.cmdline.iter().any(|w| w == arg)
    }
}

/// The vendor named by the first `vendor_id` line of `/proc/cpuinfo`.
pub fn cpu_vendor(cpuinfo: &str) -> CpuVendor {
    let vendor = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "vendor_id").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    match vendor.as_str() {
        "GenuineIntel" => CpuVendor::Intel,
        "AuthenticAMD" | "HygonGenuine" => CpuVendor::Amd,
        _ => CpuVendor::Other,
    }
}

/// The host's boot-loader tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootTool {
    Grubby,
    RpmOstree,
    UpdateGrub,
}

impl BootTool {
    /// The tool found under `root` (grubby first, as upstream).
    pub fn find(root: &HostRoot) -> Option<Self> {
        let has = |paths: &[&str]| paths.iter().any(|p| root.join(p).exists());
        if has(&["usr/sbin/grubby", "sbin/grubby", "usr/bin/grubby"]) {
            Some(Self::Grubby)
        } else if has(&["usr/bin/rpm-ostree", "bin/rpm-ostree"]) {
            Some(Self::RpmOstree)
        } else if has(&["usr/sbin/update-grub", "sbin/update-grub"]) {
            Some(Self::UpdateGrub)
        } else {
            None
        }
    }

    /// The command that makes `args` part of the next boot (run in the host
    /// root).
    pub fn command(self, args: &[String]) -> Vec<String> {
        match self {
            Self::Grubby => vec![
                "grubby".into(),
                "--update-kernel=ALL".into(),
                format!("--args={}", args.join(" ")),
            ],
            Self::RpmOstree => {
                let mut c = vec!["rpm-ostree".to_string(), "kargs".to_string()];
                c.extend(args.iter().map(|a| format!("--append={a}")));
                c
            }
            Self::UpdateGrub => vec!["update-grub".into()],
        }
    }
}

/// The Debian/Ubuntu drop-in that appends `args` to `GRUB_CMDLINE_LINUX`.
pub fn grub_dropin(args: &[String]) -> String {
    format!(
        "# Written by sriov-config-daemon (sriov-rs): kernel arguments its policies need.\n\
         GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX {}\"\n",
        args.join(" ")
    )
}

/// The command `argv` run in `root`: directly when the root is `/`, else
/// with its root directory changed to `root` (`chroot(2)` in the child
/// before `exec`, so the tool and the files it edits are the host's; the
/// image needs no `chroot` binary).
pub fn in_root(root: &Path, argv: &[String]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    if root != Path::new("/") {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::process::CommandExt;
        // Made before the fork: the child only makes two system calls.
        let dir = std::ffi::CString::new(root.as_os_str().as_bytes())
            .unwrap_or_else(|_| c"/nonexistent-root-with-nul".into());
        // SAFETY: the closure runs in the forked child before exec; it only
        // calls chroot(2) and chdir(2) on a path prepared before the fork
        // (nix passes a `CStr` through without allocating), both
        // async-signal-safe, and touches no lock or shared state.
        unsafe {
            c.pre_exec(move || {
                nix::unistd::chroot(dir.as_c_str())?;
                nix::unistd::chdir(c"/")?;
                Ok(())
            });
        }
    }
    c
}

fn run(root: &Path, argv: &[String]) -> Result<(), BootError> {
    let command = argv.join(" ");
    let out = in_root(root, argv)
        .output()
        .map_err(|e| BootError::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BootError::Command {
            command,
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Makes `args` part of the node's next boot with the host's tool; returns
/// the tool used.
pub fn add_kernel_args(root: &HostRoot, args: &[String]) -> Result<BootTool, BootError> {
    let tool = BootTool::find(root).ok_or_else(|| BootError::NoTool {
        root: root.path().to_path_buf(),
        args: args.join(" "),
    })?;
    if tool == BootTool::UpdateGrub {
        let path = root.join(GRUB_DROPIN);
        crate::files::write_atomic(
            &path,
            grub_dropin(args).as_bytes(),
            &crate::files::WriteOptions::durable(0o644),
        )
        .map_err(|e| BootError::Write {
            path,
            source: e.into(),
        })?;
    }
    run(root.path(), &tool.command(args))?;
    Ok(tool)
}

/// The command that reboots the node: a transient unit stopping the
/// kubelet, then rebooting (as upstream).
pub fn reboot_command() -> Vec<String> {
    vec![
        "systemd-run".into(),
        format!("--unit={REBOOT_UNIT}"),
        "--description=sriov-network-config-daemon reboot node".into(),
        "/bin/sh".into(),
        "-c".into(),
        "systemctl stop kubelet.service; reboot".into(),
    ]
}

/// Reboots the node (returns once the unit is started).
pub fn reboot(root: &HostRoot) -> Result<(), BootError> {
    run(root.path(), &reboot_command())
}

/// How the config daemon changes the node's boot: the real node, or a test
/// double that records ([`RecordingBoot`]).
pub trait NodeBoot: Send + Sync + std::fmt::Debug {
    /// What the running kernel was booted with.
    fn facts(&self) -> BootFacts;
    /// Adds `args` for the next boot.
    fn add_kernel_args(&self, args: &[String]) -> Result<BootTool, BootError>;
    /// Reboots the node.
    fn reboot(&self) -> Result<(), BootError>;
}

/// The real node under a host root.
#[derive(Debug, Clone)]
pub struct HostBoot(pub HostRoot);

impl NodeBoot for HostBoot {
    fn facts(&self) -> BootFacts {
        BootFacts::read(&self.0)
    }
    fn add_kernel_args(&self, args: &[String]) -> Result<BootTool, BootError> {
        add_kernel_args(&self.0, args)
    }
    fn reboot(&self) -> Result<(), BootError> {
        reboot(&self.0)
    }
}

/// A node's boot for tests of the config daemon's reboot path (as
/// `netlink::recording` is for links): fixed [`BootFacts`] the test changes
/// between steps, as a reboot would, and a record of the kernel arguments
/// added and the reboots asked for.
#[derive(Debug)]
pub struct RecordingBoot {
    facts: Mutex<BootFacts>,
    added: Mutex<Vec<Vec<String>>>,
    reboots: Mutex<usize>,
    fail_add: Mutex<Option<String>>,
}

impl RecordingBoot {
    /// A node booted with `cmdline`, with (`iommu`) or without an IOMMU.
    pub fn new(cpu: CpuVendor, cmdline: &str, iommu: bool) -> Self {
        Self {
            facts: Mutex::new(BootFacts {
                cmdline: cmdline.split_whitespace().map(str::to_string).collect(),
                iommu,
                noiommu: false,
                cpu,
            }),
            added: Mutex::new(Vec::new()),
            reboots: Mutex::new(0),
            fail_add: Mutex::new(None),
        }
    }

    /// What the next boot looks like: the arguments added so far on the
    /// command line, and the IOMMU on when `iommu` (the firmware has it).
    pub fn reboot_into(&self, iommu: bool) {
        let mut f = self.facts.lock().unwrap();
        for args in self.added.lock().unwrap().iter() {
            for a in args {
                if !f.cmdline.contains(a) {
                    f.cmdline.push(a.clone());
                }
            }
        }
        f.iommu = iommu;
    }

    /// The next `add_kernel_args` fails with `message`.
    pub fn fail_next_add(&self, message: &str) {
        *self.fail_add.lock().unwrap() = Some(message.to_string());
    }

    /// The kernel arguments added, one entry per call.
    pub fn added(&self) -> Vec<Vec<String>> {
        self.added.lock().unwrap().clone()
    }

    /// How many reboots were asked for.
    pub fn reboots(&self) -> usize {
        *self.reboots.lock().unwrap()
    }
}

impl NodeBoot for RecordingBoot {
    fn facts(&self) -> BootFacts {
        self.facts.lock().unwrap().clone()
    }

    fn add_kernel_args(&self, args: &[String]) -> Result<BootTool, BootError> {
        if let Some(message) = self.fail_add.lock().unwrap().take() {
            return Err(BootError::Command {
                command: BootTool::Grubby.command(args).join(" "),
                message,
            });
        }
        self.added.lock().unwrap().push(args.to_vec());
        Ok(BootTool::Grubby)
    }

    fn reboot(&self) -> Result<(), BootError> {
        *self.reboots.lock().unwrap() += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, HostRoot) {
        let d = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let root = HostRoot::new(d.path());
        (d, root)
    }

    #[test]
    fn facts_from_a_host_tree() {
        let (_d, root) = tree(&[
            (
                "proc/cmdline",
                "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet intel_iommu=on\n",
            ),
            (
                "proc/cpuinfo",
                "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n",
            ),
            ("sys/class/iommu/dmar0/uevent", ""),
            (
                "sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
                "N\n",
            ),
        ]);
        let f = BootFacts::read(&root);
        assert!(f.iommu && !f.noiommu);
        assert_eq!(f.cpu, CpuVendor::Intel);
        assert!(f.has_arg("intel_iommu=on") && !f.has_arg("iommu=pt"));
        // Groups without a registered IOMMU device: on, unless they are
        // vfio's no-IOMMU groups.
        let (_g, groups) = tree(&[("sys/kernel/iommu_groups/7/name", "vfio-noiommu\n")]);
        assert!(!BootFacts::read(&groups).iommu);
        let (_g, groups) = tree(&[("sys/kernel/iommu_groups/7/type", "DMA\n")]);
        assert!(BootFacts::read(&groups).iommu);
        // Nothing readable: no IOMMU, empty command line.
        let (_e, empty) = tree(&[]);
        let f = BootFacts::read(&empty);
        assert!(!f.iommu && !f.noiommu && f.cmdline.is_empty());
        assert_eq!(f.cpu, CpuVendor::Other);
        assert_eq!(cpu_vendor("vendor_id : AuthenticAMD"), CpuVendor::Amd);
    }

    #[test]
    fn the_tool_and_its_command() {
        let args = vec!["intel_iommu=on".to_string(), "iommu=pt".to_string()];
        let (_d, root) = tree(&[("usr/sbin/grubby", ""), ("usr/sbin/update-grub", "")]);
        assert_eq!(BootTool::find(&root), Some(BootTool::Grubby));
        assert_eq!(
            BootTool::Grubby.command(&args),
            [
                "grubby",
                "--update-kernel=ALL",
                "--args=intel_iommu=on iommu=pt"
            ]
        );
        let (_d, root) = tree(&[("usr/bin/rpm-ostree", "")]);
        assert_eq!(BootTool::find(&root), Some(BootTool::RpmOstree));
        assert_eq!(
            BootTool::RpmOstree.command(&args),
            [
                "rpm-ostree",
                "kargs",
                "--append=intel_iommu=on",
                "--append=iommu=pt"
            ]
        );
        let (_d, root) = tree(&[("usr/sbin/update-grub", "")]);
        assert_eq!(BootTool::find(&root), Some(BootTool::UpdateGrub));
        assert_eq!(
            grub_dropin(&args).lines().nth(1),
            Some("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt\"")
        );
        let (_d, root) = tree(&[]);
        assert_eq!(BootTool::find(&root), None);
        let e = add_kernel_args(&root, &args).unwrap_err().to_string();
        assert!(
            e.contains("no supported boot-loader tool") && e.contains("intel_iommu=on iommu=pt"),
            "{e}"
        );
    }

    #[test]
    fn commands_run_in_the_host_root() {
        let argv = reboot_command();
        let c = in_root(Path::new("/"), &argv);
        assert_eq!(c.get_program(), "systemd-run");
        let a: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(a[0], "--unit=sriov-network-config-daemon-reboot");
        assert_eq!(a.last().unwrap(), "systemctl stop kubelet.service; reboot");
        // Under another root the child changes its root first: a root with
        // no such tool fails to start it, and says what it ran.
        let d = tempfile::tempdir().unwrap();
        let e = run(d.path(), &["true".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("running true"), "{e}");
    }

    #[test]
    fn a_failing_tool_says_what_it_ran_and_what_it_printed() {
        // The root is `/`: `update-grub` is found by its path in a tree but
        // run by name; use a command that fails for the check instead.
        let e = run(
            Path::new("/"),
            &["sh".into(), "-c".into(), "echo no grub >&2; exit 3".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("running sh -c") && e.contains("exit status: 3") && e.contains("no grub"),
            "{e}"
        );
    }
}
