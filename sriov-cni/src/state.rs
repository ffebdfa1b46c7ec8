//! Saved state, in sriov-cni's own format so a node can switch plugins in
//! either direction with pods running.
//!
//! - `<dataDir>/<containerID>-<ifname>`: the network config as JSON plus
//!   `Master` (PF name), `VFID`, `MAC`, `DPDKMode`, `HostIFNames`,
//!   `ContIFNames` and `OrigVfState` {`HostIFName`, `SpoofChk`, `Trust`,
//!   `AdminMAC`, `EffectiveMAC`, `Vlan`, `VlanQoS`, `VlanProto` (EtherType
//!   as a number, 33024 = 802.1Q), `MinTxRate`, `MaxTxRate`, `LinkState`,
//!   `MTU`}. This plugin adds one key the Go plugin ignores, `sriovRs`, with
//!   what it needs beyond that (netns path, whether the PF-side state was
//!   read).
//! - `<dataDir>/pci/<pci>`: the allocation record, holding the netns path of
//!   the attachment that holds the VF.
//! - `<dataDir>/pci/vf_lock/<pci>.lock`: a per-VF `flock` (exclusive, on
//!   the whole file) held for the whole of an ADD, DEL or GC step on that
//!   VF: the Go plugin's lock file and primitive, so the two plugins exclude
//!   each other on a node that runs both. Waiting for it gives up after
//!   [`LOCK_TIMEOUT`] (60 s, as the Go plugin) with code 11 (try again).
//!
//! Every write is atomic: a temporary file in the same directory, then
//! `rename(2)`. A crash of the plugin at any point leaves either the old
//! file or the new one, whole (the data is in the page cache either way).
//! Nothing is fsynced: durability across a power loss buys nothing here,
//! because a reboot itself undoes everything these files describe (pod
//! namespaces are gone, VFs are back in the host, the PF driver starts
//! with default VF settings). What a power loss can leave is an empty file
//! (data not yet on disk when the rename was); it reads as "no state"
//! rather than as a damaged file, so a DEL after the reboot succeeds.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sriov_host::PciAddress;
use sriov_host::netlink::{MacAddr, VfInfo, VfLinkState, VfVlan, VlanProto};

use crate::error::{CniError, Code, Result};

fn io_err(what: &str, path: &Path, e: &io::Error) -> CniError {
    CniError::new(
        Code::Io,
        format!("{what} {}", path.display()),
        format!(
            "{e} (errno {}); check that the state directory is writable (config dataDir)",
            e.raw_os_error().unwrap_or(0)
        ),
    )
}

/// Writes `bytes` to `path` atomically (temp file + rename). Directories
/// are created 0700 and files 0600 whatever the umask, as the Go plugin
/// creates them (`os.MkdirAll(dataDir, 0700)`, `os.WriteFile(…, 0600)`):
/// the files say which VF a pod has and how to restore it. A state
/// directory that others can write is logged as a warning (not refused:
/// the Go plugin does not check, and refusing would break DEL on a node
/// that worked before).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use sriov_host::files::WriteOptions;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err("cannot create state directory", dir, &e))?;
    if let Ok(m) = fs::metadata(dir)
        && m.permissions().mode() & 0o002 != 0
    {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", m.permissions().mode() & 0o7777),
            "the CNI state directory is world-writable: anyone on the node can change what DEL restores; chmod 700 it"
        );
    }
    let opts = WriteOptions {
        dir_mode: None,
        ..WriteOptions::runtime(0o600)
    };
    sriov_host::files::write_atomic(path, bytes, &opts)
        .map_err(|e| io_err("cannot write state file", path, &e.into()))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("cannot remove state file", path, &e)),
    }
}

/// The VF's state before ADD changed it, as the Go plugin saves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OrigVfState {
    /// The VF netdev's name in the host.
    #[serde(rename = "HostIFName")]
    pub host_ifname: String,
    /// Spoof checking.
    #[serde(rename = "SpoofChk")]
    pub spoofchk: bool,
    /// Trust.
    #[serde(rename = "Trust")]
    pub trust: bool,
    /// The VF MAC set on the PF (`00:00:00:00:00:00` when none).
    #[serde(rename = "AdminMAC")]
    pub admin_mac: String,
    /// The VF netdev's MAC.
    #[serde(rename = "EffectiveMAC")]
    pub effective_mac: String,
    /// VLAN id.
    #[serde(rename = "Vlan")]
    pub vlan: i64,
    /// VLAN qos.
    #[serde(rename = "VlanQoS")]
    pub vlan_qos: i64,
    /// VLAN protocol as an EtherType number (33024 = 802.1Q).
    #[serde(rename = "VlanProto")]
    pub vlan_proto: i64,
    /// Min tx rate, Mbps.
    #[serde(rename = "MinTxRate")]
    pub min_tx_rate: i64,
    /// Max tx rate, Mbps.
    #[serde(rename = "MaxTxRate")]
    pub max_tx_rate: i64,
    /// Link state (0 auto, 1 enable, 2 disable).
    #[serde(rename = "LinkState")]
    pub link_state: u32,
    /// The VF netdev's MTU.
    #[serde(rename = "MTU", skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

impl OrigVfState {
    /// Fills the PF-side fields from the PF's VF info. Spoof checking and
    /// trust the driver does not report are saved as the kernel's defaults
    /// for a new VF (spoof checking on, trust off), so a DEL that restores
    /// them never leaves a VF trusted or unchecked that was not. (The Go
    /// plugin saves both as on, and would turn trust on at DEL.)
    pub fn set_pf_side(&mut self, vf: &VfInfo) {
        self.spoofchk = vf.spoofchk.unwrap_or(true);
        self.trust = vf.trust.unwrap_or(false);
        self.admin_mac = vf.mac.to_string();
        self.vlan = vf.vlan.vlan as i64;
        self.vlan_qos = vf.vlan.qos as i64;
        self.vlan_proto = vf.vlan.proto.ethertype() as i64;
        self.min_tx_rate = vf.min_tx_rate as i64;
        self.max_tx_rate = vf.max_tx_rate as i64;
        self.link_state = vf.link_state.as_u32();
    }

    /// The saved VLAN (802.1Q when the number is 0 or unknown).
    pub fn vlan(&self) -> VfVlan {
        VfVlan {
            vlan: self.vlan.clamp(0, 4095) as u16,
            qos: self.vlan_qos.clamp(0, 7) as u8,
            proto: VlanProto::from_ethertype(self.vlan_proto as u16).unwrap_or_default(),
        }
    }

    /// The saved link state.
    pub fn link_state(&self) -> VfLinkState {
        VfLinkState::from_u32(self.link_state).unwrap_or_default()
    }

    /// The saved admin MAC, `None` when empty or unparsable.
    pub fn admin_mac(&self) -> Option<MacAddr> {
        self.admin_mac.parse().ok()
    }

    /// The saved netdev MAC.
    pub fn effective_mac(&self) -> Option<MacAddr> {
        self.effective_mac.parse().ok()
    }
}

/// What this plugin saves beyond the Go plugin's fields (key `sriovRs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Extras {
    /// Format version (1).
    pub version: u32,
    /// `CNI_NETNS` of the attachment.
    pub netns: String,
    /// Whether the PF-side fields of `OrigVfState` were read from the PF
    /// (false when the PF is not visible over netlink; then no PF-side
    /// setting was changed either).
    #[serde(rename = "pfStateKnown")]
    pub pf_state_known: bool,
    /// Whether the VF MAC was set on the PF.
    #[serde(rename = "pfMacSet")]
    pub pf_mac_set: bool,
    /// The device-info file (node path) this attachment created, removed
    /// with it; empty when it created none.
    #[serde(
        rename = "devInfoFile",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub dev_info_file: String,
}

/// The Go-compatible fields of a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
struct GoFields {
    #[serde(rename = "OrigVfState")]
    orig: OrigVfState,
    #[serde(rename = "DPDKMode")]
    dpdk_mode: bool,
    #[serde(rename = "Master")]
    master: String,
    #[serde(rename = "MAC")]
    mac: String,
    #[serde(rename = "MTU")]
    mtu: Option<u32>,
    #[serde(rename = "VFID")]
    vf_id: u32,
    #[serde(rename = "ContIFNames")]
    cont_ifnames: String,
    #[serde(rename = "HostIFNames")]
    host_ifnames: String,
    #[serde(rename = "deviceID")]
    device_id: String,
    #[serde(rename = "sriovRs")]
    ours: Option<Extras>,
}

/// Keys of the state file that are not part of the network config.
const GO_KEYS: &[&str] = &[
    "OrigVfState",
    "DPDKMode",
    "Master",
    "MAC",
    "MTU",
    "VFID",
    "ContIFNames",
    "HostIFNames",
    "sriovRs",
];

/// One attachment's saved state.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The network config of the ADD (JSON object; used again for IPAM DEL).
    pub config: Value,
    /// The VF.
    pub pci: PciAddress,
    /// The PF's netdev name (`Master`).
    pub pf_name: String,
    /// The VF index (`VFID`).
    pub vf_index: u32,
    /// Userspace-driver mode (`DPDKMode`).
    pub userspace: bool,
    /// The MAC ADD set (`MAC`), if any.
    pub mac: Option<MacAddr>,
    /// The interface name in the container (`ContIFNames`).
    pub cont_ifname: String,
    /// State before ADD.
    pub orig: OrigVfState,
    /// This plugin's extras; `None` for a file written by the Go plugin.
    pub extras: Option<Extras>,
}

impl Saved {
    /// Encodes as the Go plugin's cache JSON plus `sriovRs`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut obj = match &self.config {
            Value::Object(o) => o.clone(),
            _ => serde_json::Map::new(),
        };
        let go = GoFields {
            orig: self.orig.clone(),
            dpdk_mode: self.userspace,
            master: self.pf_name.clone(),
            mac: self.mac.map(|m| m.to_string()).unwrap_or_default(),
            mtu: None,
            vf_id: self.vf_index,
            cont_ifnames: self.cont_ifname.clone(),
            host_ifnames: self.orig.host_ifname.clone(),
            device_id: self.pci.to_string(),
            ours: self.extras.clone(),
        };
        if let Value::Object(g) = serde_json::to_value(&go).expect("state serializes") {
            for (k, v) in g {
                if k == "MTU" && v.is_null() {
                    continue;
                }
                obj.insert(k, v);
            }
        }
        serde_json::to_vec(&Value::Object(obj)).expect("state serializes")
    }

    /// Decodes a state file of this plugin or of the Go plugin.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Saved> {
        let bad = |d: String| {
            CniError::new(
                Code::State,
                format!("cannot read saved state {}", path.display()),
                format!("{d}; the file is damaged: restore the VF by hand and remove the file"),
            )
        };
        let mut config: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let go: GoFields =
            serde_json::from_value(config.clone()).map_err(|e| bad(e.to_string()))?;
        // Keep only the network config in `config`.
        if let Value::Object(o) = &mut config {
            for k in GO_KEYS {
                o.remove(*k);
            }
        }
        let pci = PciAddress::parse(&go.device_id)
            .ok_or_else(|| bad(format!("deviceID {:?} is not a PCI address", go.device_id)))?;
        let mut orig = go.orig;
        if orig.mtu.is_none() {
            orig.mtu = go.mtu;
        }
        if orig.host_ifname.is_empty() {
            orig.host_ifname = go.host_ifnames.clone();
        }
        Ok(Saved {
            config,
            pci,
            pf_name: go.master,
            vf_index: go.vf_id,
            userspace: go.dpdk_mode,
            mac: go.mac.parse().ok(),
            cont_ifname: go.cont_ifnames,
            orig,
            extras: go.ours,
        })
    }
}

/// How long [`StateDir::lock`] waits for another holder (the Go plugin's
/// `pciLockAcquireTimeout`).
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// A held per-VF lock; released when dropped (the fd closes).
#[derive(Debug)]
pub struct VfLock {
    _lock: nix::fcntl::Flock<File>,
}

impl StateDir {
    /// The state directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<containerID>-<ifname>`.
    pub fn state_path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}-{ifname}"))
    }

    /// `<dir>/pci/<pci>`.
    pub fn alloc_path(&self, pci: &PciAddress) -> PathBuf {
        self.dir.join("pci").join(pci.to_string())
    }

    /// `<dir>/pci/vf_lock/<pci>.lock`: the Go plugin's lock file.
    pub fn lock_path(&self, pci: &PciAddress) -> PathBuf {
        self.dir
            .join("pci")
            .join("vf_lock")
            .join(format!("{pci}.lock"))
    }

    /// Takes the per-VF lock, waiting up to [`LOCK_TIMEOUT`] for another
    /// ADD/DEL on the VF (by this plugin or the Go one).
    pub fn lock(&self, pci: &PciAddress) -> Result<VfLock> {
        self.lock_within(pci, LOCK_TIMEOUT)
    }

    /// [`StateDir::lock`] with another bound on the wait.
    pub fn lock_within(&self, pci: &PciAddress, timeout: std::time::Duration) -> Result<VfLock> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = self.lock_path(pci);
        let dir = path.parent().expect("lock path has a parent");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("cannot create lock directory", dir, &e))?;
        // Opened read-only and created 0600, as the Go plugin does: flock
        // does not care how the file was opened, and either plugin can
        // create it first.
        let file = OpenOptions::new()
            .read(true)
            .write(false)
            .custom_flags(libc::O_CREAT | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("cannot open lock file", &path, &e))?;
        let start = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        let mut file = file;
        let lock = loop {
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(io_err("cannot lock", &path, &io::Error::from(e))),
            }
            if start.elapsed() >= timeout {
                return Err(CniError::new(
                    Code::TryAgain,
                    format!("timed out waiting for the VF lock {}", path.display()),
                    format!(
                        "another ADD or DEL on VF {pci} (this plugin or the Go sriov-cni) held it for {} s; retry",
                        timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(20));
        };
        Ok(VfLock { _lock: lock })
    }

    /// Reads an attachment's state; `None` when there is none.
    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Saved>> {
        let path = self.state_path(container_id, ifname);
        let mut s = self.load_path(&path)?;
        // The Go plugin has not written `ContIFNames` since v2.8: the
        // file's name says it.
        if let Some(s) = s.as_mut()
            && s.cont_ifname.is_empty()
        {
            s.cont_ifname = ifname.to_owned();
        }
        Ok(s)
    }

    /// Reads a state file; `None` when it does not exist, or when it is
    /// empty (or all NUL bytes): what a power loss leaves of a file whose
    /// data had not reached the disk. Files are not fsynced (see the module
    /// documentation), and after a reboot there is nothing to restore: the
    /// pod's namespace is gone, the VF is back in the host, and the PF's
    /// driver starts with default VF settings.
    pub fn load_path(&self, path: &Path) -> Result<Option<Saved>> {
        match fs::read(path) {
            Ok(b) if b.iter().all(|&c| c == 0 || c.is_ascii_whitespace()) => {
                tracing::warn!(
                    "state file {} is empty (written just before a power loss?); nothing to restore",
                    path.display()
                );
                Ok(None)
            }
            Ok(b) => Saved::from_json(&b, path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read saved state", path, &e)),
        }
    }

    /// Saves an attachment's state atomically.
    pub fn save(&self, container_id: &str, ifname: &str, s: &Saved) -> Result<()> {
        write_atomic(&self.state_path(container_id, ifname), &s.to_json())
    }

    /// Removes an attachment's state.
    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<()> {
        remove_if_exists(&self.state_path(container_id, ifname))
    }

    /// The netns path in the VF's allocation record.
    pub fn allocation(&self, pci: &PciAddress) -> Result<Option<String>> {
        let path = self.alloc_path(pci);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read allocation record", &path, &e)),
        }
    }

    /// Records that the VF is held by the attachment in `netns`.
    pub fn allocate(&self, pci: &PciAddress, netns: &str) -> Result<()> {
        write_atomic(&self.alloc_path(pci), netns.as_bytes())
    }

    /// Removes the VF's allocation record.
    pub fn release(&self, pci: &PciAddress) -> Result<()> {
        remove_if_exists(&self.alloc_path(pci))
    }

    /// All attachment state files: `(file name, path)`.
    pub fn list(&self) -> Result<Vec<(String, PathBuf)>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot list state directory", &self.dir, &e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            out.push((name, e.path()));
        }
        out.sort();
        Ok(out)
    }

    /// Whether the directory can be written (STATUS).
    pub fn check_writable(&self) -> Result<()> {
        let probe = self.dir.join(format!(".status.{}", std::process::id()));
        write_atomic(&probe, b"ok")?;
        remove_if_exists(&probe)
    }
}

/// Whether a netns path still names a live network namespace.
pub fn netns_alive(path: &str) -> bool {
    !path.is_empty() && sriov_host::netns::Netns::open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache file as the Go sriov-cni (v2.8) writes it.
    pub const GO_CACHE: &str = r#"{"cniVersion":"0.4.0","name":"sriov-net","type":"sriov","ipam":{"type":"host-local","subnet":"10.56.217.0/24"},"dns":{},"OrigVfState":{"HostIFName":"ens1f0v1","SpoofChk":true,"Trust":false,"AdminMAC":"00:00:00:00:00:00","EffectiveMAC":"02:53:3b:00:01:00","Vlan":0,"VlanQoS":0,"VlanProto":33024,"MinTxRate":0,"MaxTxRate":0,"LinkState":0},"DPDKMode":false,"Master":"ens1f0","MAC":"","MTU":1500,"VFID":1,"ContIFNames":"net1","HostIFNames":"ens1f0v1","deviceID":"0000:3b:01.1","vlan":100,"vlanQoS":0,"vlanProto":"802.1q","DeviceInfo":null,"spoofchk":"off","min_tx_rate":null,"max_tx_rate":null,"runtimeConfig":{},"logLevel":"info"}"#;

    #[test]
    fn reads_go_cache() {
        let s = Saved::from_json(GO_CACHE.as_bytes(), Path::new("x")).unwrap();
        assert_eq!(s.pf_name, "ens1f0");
        assert_eq!(s.vf_index, 1);
        assert_eq!(s.pci.to_string(), "0000:3b:01.1");
        assert_eq!(s.orig.host_ifname, "ens1f0v1");
        assert_eq!(s.orig.vlan().proto, VlanProto::Dot1Q);
        assert_eq!(s.orig.mtu, Some(1500));
        assert!(s.orig.spoofchk);
        assert_eq!(s.cont_ifname, "net1");
        assert!(s.extras.is_none());
        assert!(s.mac.is_none());
        assert_eq!(s.config["ipam"]["type"], "host-local");
    }

    #[test]
    fn empty_state_file_after_power_loss_reads_as_none() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::new(d.path());
        std::fs::write(st.state_path("c", "net1"), b"").unwrap();
        assert_eq!(st.load("c", "net1").unwrap(), None);
        std::fs::write(st.state_path("c", "net1"), [0u8; 512]).unwrap();
        assert_eq!(st.load("c", "net1").unwrap(), None);
        // Real damage is still an error.
        std::fs::write(st.state_path("c", "net1"), b"{\"cniVersion\":").unwrap();
        assert_eq!(st.load("c", "net1").unwrap_err().code, Code::State);
    }

    #[test]
    fn round_trip_and_go_keys() {
        let mut s = Saved::from_json(GO_CACHE.as_bytes(), Path::new("x")).unwrap();
        s.extras = Some(Extras {
            version: 1,
            netns: "/run/netns/p".into(),
            pf_state_known: true,
            pf_mac_set: false,
            dev_info_file: "/var/run/k8s.cni.cncf.io/devinfo/cni/n-c_net1".into(),
        });
        s.mac = Some("02:00:00:00:00:09".parse().unwrap());
        let bytes = s.to_json();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["OrigVfState"]["VlanProto"], 33024);
        assert_eq!(v["Master"], "ens1f0");
        assert_eq!(v["VFID"], 1);
        assert_eq!(v["MAC"], "02:00:00:00:00:09");
        assert_eq!(v["vlan"], 100);
        let back = Saved::from_json(&bytes, Path::new("x")).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn damaged_state_is_code_109() {
        let e = Saved::from_json(b"{\"deviceID\":\"zz\"}", Path::new("/s/x")).unwrap_err();
        assert_eq!(e.code, Code::State);
        assert!(e.msg.contains("/s/x"));
        assert!(Saved::from_json(b"garbage", Path::new("x")).is_err());
    }

    #[test]
    fn dir_ops() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::new(d.path().join("sriov"));
        let pci: PciAddress = "0000:3b:01.1".parse().unwrap();
        assert!(st.load("c", "net1").unwrap().is_none());
        assert!(st.allocation(&pci).unwrap().is_none());
        let s = Saved::from_json(GO_CACHE.as_bytes(), Path::new("x")).unwrap();
        st.save("c", "net1", &s).unwrap();
        st.allocate(&pci, "/run/netns/x").unwrap();
        assert_eq!(st.load("c", "net1").unwrap().unwrap(), s);
        assert_eq!(
            st.allocation(&pci).unwrap().as_deref(),
            Some("/run/netns/x")
        );
        let names: Vec<String> = st.list().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["c-net1"]);
        {
            let _l = st.lock(&pci).unwrap();
            // A second lock on another VF does not wait.
            let _m = st.lock(&"0000:3b:01.2".parse().unwrap()).unwrap();
        }
        st.check_writable().unwrap();
        st.remove("c", "net1").unwrap();
        st.remove("c", "net1").unwrap();
        st.release(&pci).unwrap();
        st.release(&pci).unwrap();
        assert!(st.list().unwrap().is_empty());
    }

    /// Issue 12 item 13: the lock is the Go plugin's file
    /// (`<dataDir>/pci/vf_lock/<pci>.lock`) and primitive (`flock`
    /// exclusive): a holder of that file in another process (here
    /// util-linux `flock`, which takes the same lock Go's `unix.Flock`
    /// does) keeps this plugin out until it lets go.
    #[test]
    fn lock_is_the_go_plugins_file_and_primitive() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::new(d.path());
        let pci: PciAddress = "0000:3b:01.1".parse().unwrap();
        let go_path = d.path().join("pci/vf_lock/0000:3b:01.1.lock");
        assert_eq!(st.lock_path(&pci), go_path);
        // The Go plugin creates the directory with mode 0600 (root can
        // still use it).
        std::fs::create_dir_all(go_path.parent().unwrap()).unwrap();
        let holder = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&go_path)
            .unwrap();
        // Stands in for the Go process.
        let holder = nix::fcntl::Flock::lock(holder, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let e = st
            .lock_within(&pci, std::time::Duration::from_millis(150))
            .unwrap_err();
        assert_eq!(e.code, Code::TryAgain, "{e}");
        drop(holder);
        let _l = st
            .lock_within(&pci, std::time::Duration::from_millis(150))
            .unwrap();
        // And the other way round: while this plugin holds it, another
        // process cannot take it (util-linux flock, nonblocking).
        if let Ok(out) = std::process::Command::new("flock")
            .args(["-n", "-E", "75"])
            .arg(&go_path)
            .arg("true")
            .output()
        {
            assert_eq!(out.status.code(), Some(75), "flock -n got the lock");
        } else {
            eprintln!("SKIP part: util-linux flock not installed");
        }
        // The allocation record directory still lists only records.
        st.allocate(&pci, "/run/netns/x").unwrap();
        assert_eq!(
            st.allocation(&pci).unwrap().as_deref(),
            Some("/run/netns/x")
        );
    }

    #[test]
    fn lock_excludes_other_holders() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::new(d.path());
        let pci: PciAddress = "0000:3b:01.1".parse().unwrap();
        let l = st.lock(&pci).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let st2 = st.clone();
        let t = std::thread::spawn(move || {
            let _l = st2.lock(&pci).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(l);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
