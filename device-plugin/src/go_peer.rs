//! Upstream's Go plugin (`sriovdp`, sriov-network-device-plugin) over a
//! simulated tree, for the side-by-side test and benchmark (issue 16;
//! feature `testing`).
//!
//! Upstream reads `/sys`, the kubelet's directory and its device-info
//! directory at fixed paths and asks netlink for every netdev's link type,
//! so it runs under `unshare --mount --net` (root): the tree's `sys` bound
//! over `/sys`, tmpfs over `/var/lib` and `/run`, the test kubelet's
//! directory bound at `/var/lib/kubelet/device-plugins` and the device-info
//! directory at `/run/k8s.cni.cncf.io/devinfo/dp`, and a veth for every
//! netdev of the tree (veth, not dummy: every lane needs veth already, and a
//! kernel may lack the dummy module). ghw, which upstream lists devices
//! with, needs a pci.ids file: a minimal one is written next to the tree.
//!
//! Nothing here builds upstream's binary (the Go module proxy refuses the
//! module; docs/testing.md, "Go peers"): the caller names it.

use std::io::{self, BufRead};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The vendors and the class of the simulated trees, in pci.ids form.
const PCI_IDS: &str = "8086  Intel Corporation\n15b3  Mellanox Technologies\n\
1af4  Red Hat, Inc.\nC 02  Network controller\n\t00  Ethernet controller\n";

const SCRIPT: &str = r#"set -e
mount --bind "$TREE/sys" /sys
mount -t tmpfs none /var/lib
mount -t tmpfs none /run
mkdir -p /var/lib/kubelet/device-plugins /run/k8s.cni.cncf.io/devinfo/dp
mount --bind "$KP" /var/lib/kubelet/device-plugins
mount --bind "$DEVINFO" /run/k8s.cni.cncf.io/devinfo/dp
ip link set lo up
ip -batch "$BATCH"
echo ready
exec "$GO_DP" --config-file "$CONFIG" "$@"
"#;

/// Upstream's plugin, running; killed on drop.
#[derive(Debug)]
pub struct GoPlugin {
    child: Child,
}

impl GoPlugin {
    /// Starts `bin` over the tree at `root` with `config`, registering with
    /// the test kubelet in `kp` and writing device-info files to
    /// `devinfo`; `args` follow `--config-file` (e.g. `--resource-prefix`).
    /// Returns once the namespaces are set up and the plugin is being
    /// exec'd; its stderr (glog) goes to `log`, or nowhere.
    pub fn start(
        bin: &Path,
        root: &Path,
        config: &Path,
        kp: &Path,
        devinfo: &Path,
        args: &[&str],
        log: Option<&Path>,
    ) -> io::Result<GoPlugin> {
        let mut names: Vec<String> = std::fs::read_dir(root.join("sys/class/net"))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let batch = root.join("go-peer-links.batch");
        let lines: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("link add {n} type veth peer name p{i}\n"))
            .collect();
        std::fs::write(&batch, lines)?;
        let ids = root.join("go-peer-pci.ids");
        std::fs::write(&ids, PCI_IDS)?;
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p)?),
            None => Stdio::null(),
        };
        let mut child = Command::new("unshare")
            .args(["--mount", "--net", "--propagation", "private"])
            .args(["sh", "-c", SCRIPT, "go-peer"])
            .args(args)
            .env("TREE", root)
            .env("KP", kp)
            .env("DEVINFO", devinfo)
            .env("BATCH", &batch)
            .env("CONFIG", config)
            .env("GO_DP", bin)
            .env("PCIDB_PATH", &ids)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        io::BufReader::new(stdout).read_line(&mut line)?;
        let plugin = GoPlugin { child };
        if line.trim() != "ready" {
            return Err(io::Error::other(
                "the Go plugin's namespace set-up failed (unshare, mount or ip; root needed)",
            ));
        }
        Ok(plugin)
    }

    /// The plugin's process id (the same process from `unshare` on: it
    /// execs the shell, which execs the plugin).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoPlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
