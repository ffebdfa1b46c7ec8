//! Preparing and unpreparing claims on the node: the VF's driver per the
//! claim's configuration, a CDI spec per claim, and a checkpoint of what
//! was prepared.
//!
//! - [`Preparer::prepare`] takes a claim's allocated devices of this
//!   driver (request, pool, device, [`VfConfig`]). It first checks every
//!   device (the pool is this node's, the device one of its VFs, not
//!   prepared for another claim, a requested driver loaded) and changes
//!   nothing when one fails. Then, for each device whose config names a
//!   `driver`, it records the VF's binding (driver and `driver_override`)
//!   in the checkpoint as pending and rebinds it through
//!   [`sriov_host::driver`]: `vfio-pci` (or another userspace driver) with
//!   the override kept, another kernel driver with it cleared, `default`
//!   back to the default kernel driver. It then writes the claim's CDI
//!   spec `<cdi dir>/sriov-rs-dra_<claim uid>.json` (kind
//!   `sriovnetwork.k8snetworkplumbingwg.io/vf`, one CDI device per VF
//!   named by the VF's PCI address (see [`cdi_device_name`]); the edits
//!   are upstream's: env
//!   `SRIOVNETWORK_VF_DEVICE_<device>=<address>`; for a VF on vfio-pci the
//!   group device (`/dev/vfio/<group>`, from `/dev/vfio/noiommu-<group>`
//!   in no-IOMMU mode), `/dev/vfio/vfio` and
//!   `SRIOVNETWORK_<device>_VFIO_DEVICE`; for an RDMA-capable VF on its
//!   kernel driver its `uverbs`, `umad`, `issm` and `rdma_cm` nodes and
//!   `SRIOVNETWORK_<device>_RDMA_{UVERB,UMAD,ISSM,CM,DEVICE}`; `SRIOVNETWORK_NET_ATTACH_DEF_NAME`
//!   when set; `/dev/vhost-net` and `/dev/net/tun` with `addVhostMount`)
//!   and marks the claim complete in the checkpoint. It returns the CDI
//!   device IDs. A failure at any step restores the VFs already rebound,
//!   removes the spec and the entry. Preparing a claim again returns what
//!   was recorded (idempotent); a pending entry (a prepare cut short by a
//!   crash) is undone first and the claim prepared afresh.
//! - [`Preparer::unprepare`] gives every rebound VF its recorded binding
//!   back ([`sriov_host::driver::restore`]; a VF gone from the node has
//!   nothing to restore), then removes the claim's checkpoint entry and CDI
//!   spec. It needs nothing but the claim UID, so it works after a restart
//!   and after the claim object is gone; an unknown UID is success. When a
//!   restore fails the entry stays, and the kubelet's retry tries again.
//! - Two instances of the driver may run at once (a rolling update: the
//!   kubelet may call either): every prepare and unprepare holds an
//!   exclusive `flock` on `<plugin dir>/checkpoint.lock` and reads the
//!   checkpoint under it, so neither works from a stale copy nor
//!   overwrites the other's entries.
//! - The checkpoint (`<plugin dir>/checkpoint.json`) and spec files are
//!   written atomically (temp file + rename): the checkpoint is written
//!   before a VF is rebound and after the spec on prepare, and before the
//!   spec is removed on unprepare, so a crash leaves at worst a pending
//!   entry or a spec that a later prepare or unprepare cleans up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sriov_host::driver::{self, BindOptions, DriverKind, DriverState};
use sriov_host::{HostRoot, PciAddress, PciFunction};

use crate::attributes::{UPSTREAM_DOMAIN, address_of};
use crate::config::{DriverRequest, VfConfig};

/// The CDI kind of every device this driver prepares.
pub const CDI_KIND: &str = "sriovnetwork.k8snetworkplumbingwg.io/vf";
/// CDI spec version written.
pub const CDI_VERSION: &str = "0.6.0";
/// The CDI device name of a prepared VF: its PCI address (`0000:3b:02.0`;
/// CDI names may hold `:` and `.`).
///
/// Upstream's driver names it `<claim uid>-<device>`. The PCI address is
/// what Multus needs: Multus 4.x reads a pod's DRA devices from the
/// kubelet's PodResources API and passes the part of each CDI ID after `=`
/// to the CNI as `deviceID` (its `kubeletclient` `getDRAResources`), so the
/// NAD's sriov CNI gets the VF's address, as with the device plugin. The
/// name is unique on the node: a VF is prepared for one claim at a time
/// ([`PrepareError::InUse`]), and its spec is removed at unprepare.
pub fn cdi_device_name(address: &PciAddress) -> String {
    address.to_string()
}

/// The checkpoint's file name in the plugin directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// The lock file next to the checkpoint: held through every prepare and
/// unprepare, so two driver instances (a rolling update) take turns.
pub const LOCK_FILE: &str = "checkpoint.lock";

/// Prefix of this driver's CDI spec files.
pub const SPEC_PREFIX: &str = "sriov-rs-dra_";
/// The driver whose VFs get VFIO device nodes.
pub const VFIO_PCI: &str = "vfio-pci";
/// How long a rebind waits for the kernel.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a prepare or unprepare failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("device {device}: pool {pool:?} is not this node's pool {node:?}")]
    WrongPool {
        device: String,
        pool: String,
        node: String,
    },
    #[error("device {0:?} is not a VF of this node (names are the VF address as DDDD-BB-DD-F)")]
    UnknownDevice(String),
    #[error("device {device} ({address}) is gone from the node: {source}")]
    Gone {
        device: String,
        address: PciAddress,
        #[source]
        source: Box<sriov_host::error::Error>,
    },
    #[error("device {device} is already prepared for claim {other}")]
    InUse { device: String, other: String },
    #[error(
        "device {device} ({address}): cannot bind driver {driver:?} as the claim's VfConfig asks: {source}"
    )]
    Bind {
        device: String,
        address: PciAddress,
        driver: String,
        #[source]
        source: Box<sriov_host::error::Error>,
    },
    #[error("device {device} ({address}): cannot restore its driver {original:?}: {source}")]
    Restore {
        device: String,
        address: PciAddress,
        original: Option<String>,
        #[source]
        source: Box<sriov_host::error::Error>,
    },
    #[error(
        "device {device} ({address}) is on vfio-pci but has no IOMMU group: no /dev/vfio device to give the container (is the IOMMU on, or vfio's no-IOMMU mode?)"
    )]
    NoIommuGroup { device: String, address: PciAddress },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One allocated device of a claim, as the allocation result names it,
/// with the configuration that applies to its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedDevice {
    pub request: String,
    pub pool: String,
    pub device: String,
    #[serde(default)]
    pub config: VfConfig,
}

/// A VF's binding before prepare changed it: what unprepare restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalBinding {
    /// The driver it was bound to (`None`: none).
    pub driver: Option<String>,
    /// Its `driver_override` (`None`: none).
    pub driver_override: Option<String>,
}

impl From<DriverState> for OriginalBinding {
    fn from(s: DriverState) -> Self {
        Self {
            driver: s.driver,
            driver_override: s.driver_override,
        }
    }
}

impl From<&OriginalBinding> for DriverState {
    fn from(b: &OriginalBinding) -> Self {
        DriverState {
            driver: b.driver.clone(),
            driver_override: b.driver_override.clone(),
        }
    }
}

/// A prepared device: what the kubelet gets back, and what unprepare
/// restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedDevice {
    pub request: String,
    pub pool: String,
    pub device: String,
    pub address: PciAddress,
    pub cdi_ids: Vec<String>,
    /// The configuration applied (empty: none).
    #[serde(default, skip_serializing_if = "VfConfig::is_empty")]
    pub config: VfConfig,
    /// Set when the config named a driver: the binding before, restored by
    /// unprepare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<OriginalBinding>,
}

/// A prepared claim in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedClaim {
    pub namespace: String,
    pub name: String,
    pub devices: Vec<PreparedDevice>,
    /// Recorded before VFs are rebound, cleared once the claim is prepared:
    /// a pending entry after a restart is a prepare cut short, undone by the
    /// next prepare or unprepare of the claim.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// The checkpoint file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Version of this format.
    pub version: u32,
    /// By claim UID.
    pub claims: BTreeMap<String, PreparedClaim>,
}

/// Prepares and unprepares claims on one node.
#[derive(Debug)]
pub struct Preparer {
    root: HostRoot,
    node: String,
    cdi_dir: PathBuf,
    checkpoint_path: PathBuf,
    lock_path: PathBuf,
    checkpoint: Checkpoint,
    bind_timeout: Duration,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `data` to `path` atomically and durably (the checkpoint and the
/// CDI specs are read after a restart): [`sriov_host::files::write_atomic`].
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), PrepareError> {
    sriov_host::files::write_atomic(path, data, &sriov_host::files::WriteOptions::durable(0o644))
        .map_err(|e| PrepareError::Io {
            path: e.path.clone(),
            source: e.source,
        })
}

/// Reads a checkpoint file; an empty checkpoint when there is none.
fn read_checkpoint(path: &Path) -> Result<Checkpoint, PrepareError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| PrepareError::Checkpoint {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint {
            version: 1,
            ..Default::default()
        }),
        Err(e) => Err(io(path)(e)),
    }
}

impl Preparer {
    /// Opens (or starts) the checkpoint in `plugin_dir`.
    pub fn open(
        root: HostRoot,
        node: &str,
        plugin_dir: &Path,
        cdi_dir: &Path,
    ) -> Result<Self, PrepareError> {
        let checkpoint_path = plugin_dir.join(CHECKPOINT_FILE);
        Ok(Self {
            root,
            node: node.to_string(),
            cdi_dir: cdi_dir.to_path_buf(),
            checkpoint: read_checkpoint(&checkpoint_path)?,
            lock_path: plugin_dir.join(LOCK_FILE),
            checkpoint_path,
            bind_timeout: BIND_TIMEOUT,
        })
    }

    /// Reads the checkpoint again: another instance of the driver (a
    /// rolling update runs two) may have changed it. Lock-free: the file
    /// is replaced whole (rename), so a read sees one version.
    pub fn reload(&mut self) -> Result<(), PrepareError> {
        self.checkpoint = read_checkpoint(&self.checkpoint_path)?;
        Ok(())
    }

    /// Takes the checkpoint's lock (waiting for another instance's prepare
    /// or unprepare to finish) and reads the checkpoint under it.
    fn lock(&mut self) -> Result<sriov_host::files::FileLock, PrepareError> {
        if let Some(dir) = self.lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let lock = sriov_host::files::lock_exclusive(&self.lock_path, 0o600)
            .map_err(io(&self.lock_path))?;
        self.reload()?;
        Ok(lock)
    }

    /// How long a rebind waits for the kernel ([`BIND_TIMEOUT`] unless set).
    pub fn with_bind_timeout(mut self, timeout: Duration) -> Self {
        self.bind_timeout = timeout;
        self
    }

    /// The prepared claims.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The CDI spec file of a claim.
    pub fn spec_path(&self, claim_uid: &str) -> PathBuf {
        self.cdi_dir.join(format!("{SPEC_PREFIX}{claim_uid}.json"))
    }

    fn save(&self) -> Result<(), PrepareError> {
        let data = serde_json::to_vec_pretty(&self.checkpoint).map_err(|source| {
            PrepareError::Checkpoint {
                path: self.checkpoint_path.clone(),
                source,
            }
        })?;
        write_atomic(&self.checkpoint_path, &data)
    }

    /// The devices of a claim prepared before (complete in the
    /// checkpoint, read again: another instance may have prepared it);
    /// `None` for an unknown or pending claim.
    pub fn prepared(&mut self, uid: &str) -> Option<Vec<PreparedDevice>> {
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "reading the checkpoint again failed; using the last read");
        }
        self.checkpoint
            .claims
            .get(uid)
            .filter(|c| !c.pending)
            .map(|c| c.devices.clone())
    }

    /// Prepares a claim (see the module docs).
    pub fn prepare(
        &mut self,
        uid: &str,
        namespace: &str,
        name: &str,
        devices: &[AllocatedDevice],
    ) -> Result<Vec<PreparedDevice>, PrepareError> {
        let _lock = self.lock()?;
        self.prepare_locked(uid, namespace, name, devices)
    }

    fn prepare_locked(
        &mut self,
        uid: &str,
        namespace: &str,
        name: &str,
        devices: &[AllocatedDevice],
    ) -> Result<Vec<PreparedDevice>, PrepareError> {
        match self.checkpoint.claims.get(uid) {
            Some(c) if !c.pending => return Ok(c.devices.clone()),
            Some(_) => {
                tracing::warn!(
                    uid,
                    "a prepare of this claim was cut short; undoing it first"
                );
                self.unprepare_locked(uid)?;
            }
            None => {}
        }
        // Every check before anything changes.
        let mut planned = Vec::with_capacity(devices.len());
        for d in devices {
            planned.push(self.check(uid, d)?);
        }
        let rebinds = planned.iter().any(|p| p.original.is_some());
        if rebinds {
            self.checkpoint.claims.insert(
                uid.to_string(),
                PreparedClaim {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    devices: planned.clone(),
                    pending: true,
                },
            );
            if let Err(e) = self.save() {
                self.checkpoint.claims.remove(uid);
                return Err(e);
            }
        }
        let result = self.apply(uid, namespace, name, &mut planned);
        if let Err(e) = result {
            // Undo what was done, as far as it goes, and forget the claim.
            let restored = self.restore_all(&planned);
            if let Err(r) = &restored {
                tracing::error!(uid, error = %r, "rolling back a failed prepare: a VF keeps the driver it was given");
            }
            let _ = std::fs::remove_file(self.spec_path(uid));
            if rebinds && restored.is_ok() {
                self.checkpoint.claims.remove(uid);
                let _ = self.save();
            }
            return Err(e);
        }
        Ok(planned)
    }

    /// Checks one allocated device; its [`PreparedDevice`] with the
    /// binding to restore (when the config names a driver) but no CDI IDs.
    fn check(&self, uid: &str, d: &AllocatedDevice) -> Result<PreparedDevice, PrepareError> {
        if d.pool != self.node {
            return Err(PrepareError::WrongPool {
                device: d.device.clone(),
                pool: d.pool.clone(),
                node: self.node.clone(),
            });
        }
        let address =
            address_of(&d.device).ok_or_else(|| PrepareError::UnknownDevice(d.device.clone()))?;
        if let Some((other, _)) = self
            .checkpoint
            .claims
            .iter()
            .find(|(u, c)| *u != uid && c.devices.iter().any(|p| p.address == address))
        {
            return Err(PrepareError::InUse {
                device: d.device.clone(),
                other: other.clone(),
            });
        }
        let gone = |source| PrepareError::Gone {
            device: d.device.clone(),
            address,
            source: Box::new(source),
        };
        let f = PciFunction::read(&self.root, &address).map_err(gone)?;
        if f.vf.is_none() {
            return Err(PrepareError::UnknownDevice(d.device.clone()));
        }
        let original = match d.config.driver_request() {
            DriverRequest::Unchanged => None,
            req => {
                if let DriverRequest::Named(drv) = req {
                    driver::require_driver(&self.root, drv).map_err(|source| {
                        PrepareError::Bind {
                            device: d.device.clone(),
                            address,
                            driver: drv.to_string(),
                            source: Box::new(source),
                        }
                    })?;
                }
                Some(
                    driver::driver_state(&self.root, &address)
                        .map_err(gone)?
                        .into(),
                )
            }
        };
        Ok(PreparedDevice {
            request: d.request.clone(),
            pool: d.pool.clone(),
            device: d.device.clone(),
            address,
            cdi_ids: Vec::new(),
            config: d.config.clone(),
            original,
        })
    }

    /// Rebinds the planned devices, writes the spec and records the claim
    /// complete; fills in the CDI IDs.
    fn apply(
        &mut self,
        uid: &str,
        namespace: &str,
        name: &str,
        planned: &mut [PreparedDevice],
    ) -> Result<(), PrepareError> {
        for p in planned.iter() {
            self.bind(p)?;
        }
        let mut cdi_devices = Vec::with_capacity(planned.len());
        for p in planned.iter_mut() {
            let cdi_name = cdi_device_name(&p.address);
            cdi_devices.push(json!({"name": cdi_name, "containerEdits": self.edits(p)?}));
            p.cdi_ids = vec![format!("{CDI_KIND}={cdi_name}")];
        }
        let spec = json!({
            "cdiVersion": CDI_VERSION,
            "kind": CDI_KIND,
            "annotations": {format!("{UPSTREAM_DOMAIN}/claim"): format!("{namespace}/{name}")},
            "devices": cdi_devices,
        });
        write_atomic(
            &self.spec_path(uid),
            &serde_json::to_vec_pretty(&spec).expect("JSON value"),
        )?;
        let before = self.checkpoint.claims.insert(
            uid.to_string(),
            PreparedClaim {
                namespace: namespace.to_string(),
                name: name.to_string(),
                devices: planned.to_vec(),
                pending: false,
            },
        );
        if let Err(e) = self.save() {
            match before {
                Some(b) => self.checkpoint.claims.insert(uid.to_string(), b),
                None => self.checkpoint.claims.remove(uid),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Binds a device to the driver its config names.
    fn bind(&self, p: &PreparedDevice) -> Result<(), PrepareError> {
        let err = |driver: &str| {
            let driver = driver.to_string();
            move |source| PrepareError::Bind {
                device: p.device.clone(),
                address: p.address,
                driver,
                source: Box::new(source),
            }
        };
        let outcome = match p.config.driver_request() {
            DriverRequest::Unchanged => return Ok(()),
            DriverRequest::Default => {
                driver::bind_default(&self.root, &p.address, self.bind_timeout)
                    .map_err(err(crate::config::DEFAULT_DRIVER))?
            }
            DriverRequest::Named(drv) => {
                let opts = BindOptions {
                    // A userspace driver keeps the VF across re-probes; a
                    // kernel driver needs no override once bound.
                    keep_override: DriverKind::of(Some(drv)) == DriverKind::Userspace,
                    timeout: self.bind_timeout,
                };
                driver::bind(&self.root, &p.address, drv, &opts).map_err(err(drv))?
            }
        };
        tracing::info!(device = %p.device, address = %p.address, from = ?outcome.previous, to = ?outcome.current, "VF driver per the claim's VfConfig");
        Ok(())
    }

    /// The CDI container edits of a bound device.
    fn edits(&self, p: &PreparedDevice) -> Result<serde_json::Value, PrepareError> {
        let f = PciFunction::read(&self.root, &p.address).map_err(|source| PrepareError::Gone {
            device: p.device.clone(),
            address: p.address,
            source: Box::new(source),
        })?;
        let env_name = p.device.replace('-', "_");
        let mut env = vec![format!("SRIOVNETWORK_VF_DEVICE_{env_name}={}", p.address)];
        let mut nodes = Vec::new();
        if f.driver.as_deref() == Some(VFIO_PCI) {
            match f.iommu_group {
                Some(g) => {
                    let n = sriov_host::devnodes::vfio_group_node(&self.root, g);
                    nodes.push(json!({"path": n.container_path, "hostPath": n.host_path, "permissions": "rw"}));
                    nodes.push(json!({"path": "/dev/vfio/vfio", "hostPath": "/dev/vfio/vfio", "permissions": "rw"}));
                    env.push(format!(
                        "SRIOVNETWORK_{env_name}_VFIO_DEVICE={}",
                        n.container_path
                    ));
                }
                None if p.config.driver == VFIO_PCI => {
                    return Err(PrepareError::NoIommuGroup {
                        device: p.device.clone(),
                        address: p.address,
                    });
                }
                None => {}
            }
        }
        // An RDMA-capable VF on its kernel driver: its character devices,
        // as upstream (`SRIOVNETWORK_<device>_RDMA_*`).
        if let Some(rdma) = f.rdma.first()
            && DriverKind::of(f.driver.as_deref()) == DriverKind::Kernel
        {
            let chars = sriov_host::devnodes::rdma_char_devices(&self.root.pci_device(&p.address));
            for (kind, var) in [
                ("uverbs", "UVERB"),
                ("umad", "UMAD"),
                ("issm", "ISSM"),
                ("rdma_cm", "CM"),
            ] {
                if let Some(node) = chars.get(kind) {
                    nodes.push(json!({"path": node, "hostPath": node, "permissions": "rw"}));
                    env.push(format!("SRIOVNETWORK_{env_name}_RDMA_{var}={node}"));
                }
            }
            env.push(format!("SRIOVNETWORK_{env_name}_RDMA_DEVICE={rdma}"));
        }
        if !p.config.net_attach_def_name.is_empty() {
            env.push(format!(
                "SRIOVNETWORK_NET_ATTACH_DEF_NAME={}",
                p.config.net_attach_def_name
            ));
        }
        if p.config.add_vhost_mount {
            for d in ["/dev/vhost-net", "/dev/net/tun"] {
                nodes.push(json!({"path": d, "hostPath": d, "permissions": "rw"}));
            }
        }
        let mut edits = json!({ "env": env });
        if !nodes.is_empty() {
            edits["deviceNodes"] = json!(nodes);
        }
        Ok(edits)
    }

    /// Gives every rebound device its recorded binding back, last first;
    /// goes on after a failure and returns the first. A VF gone from the
    /// node has nothing to restore.
    fn restore_all(&self, devices: &[PreparedDevice]) -> Result<(), PrepareError> {
        let mut first = None;
        for p in devices.iter().rev() {
            let Some(original) = &p.original else {
                continue;
            };
            match driver::restore(&self.root, &p.address, &original.into(), self.bind_timeout) {
                Ok(()) => {
                    tracing::info!(device = %p.device, address = %p.address, driver = ?original.driver, "VF driver restored")
                }
                Err(sriov_host::error::Error::NoSuchDevice { .. }) => {
                    tracing::warn!(device = %p.device, address = %p.address, "VF gone from the node; nothing to restore")
                }
                Err(source) => {
                    tracing::warn!(device = %p.device, address = %p.address, error = %source, "restoring the VF's driver failed");
                    first.get_or_insert(PrepareError::Restore {
                        device: p.device.clone(),
                        address: p.address,
                        original: original.driver.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Unprepares a claim by UID (see the module docs).
    pub fn unprepare(&mut self, uid: &str) -> Result<(), PrepareError> {
        let _lock = self.lock()?;
        self.unprepare_locked(uid)
    }

    fn unprepare_locked(&mut self, uid: &str) -> Result<(), PrepareError> {
        if let Some(c) = self.checkpoint.claims.get(uid) {
            self.restore_all(&c.devices)?;
        }
        if let Some(c) = self.checkpoint.claims.remove(uid)
            && let Err(e) = self.save()
        {
            self.checkpoint.claims.insert(uid.to_string(), c);
            return Err(e);
        }
        let path = self.spec_path(uid);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }
}
