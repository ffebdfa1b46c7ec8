//! Preparing and unpreparing claims on the node: a CDI spec per claim and
//! a checkpoint of what was prepared.
//!
//! - [`Preparer::prepare`] takes a claim's allocated devices of this
//!   driver (request, pool, device), checks the pool is this node's and
//!   each device one of its VFs, not prepared for another claim, then
//!   writes the claim's CDI spec `<cdi dir>/sriov-rs-dra_<claim uid>.json`
//!   (kind `sriovnetwork.k8snetworkplumbingwg.io/vf`, one CDI device
//!   `<claim uid>-<device>` per device: env
//!   `SRIOVNETWORK_VF_DEVICE_<device>=<address>` as upstream, and for a VF
//!   on vfio-pci `/dev/vfio/<group>` and `/dev/vfio/vfio`), then records
//!   the claim in the checkpoint. It returns the CDI device IDs. Preparing
//!   a claim again returns what was recorded (idempotent).
//! - [`Preparer::unprepare`] removes the claim's CDI spec and checkpoint
//!   entry; it needs nothing but the claim UID, so it works after a
//!   restart and after the claim object is gone, and an unknown UID is
//!   success.
//! - The checkpoint (`<plugin dir>/checkpoint.json`) and spec files are
//!   written atomically (temp file + rename): the checkpoint is written
//!   after the spec on prepare and before the spec is removed on unprepare,
//!   so a crash leaves at worst a spec that a later unprepare removes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sriov_host::{HostRoot, PciAddress, PciFunction};

use crate::attributes::{UPSTREAM_DOMAIN, address_of};

/// The CDI kind of every device this driver prepares.
pub const CDI_KIND: &str = "sriovnetwork.k8snetworkplumbingwg.io/vf";
/// CDI spec version written.
pub const CDI_VERSION: &str = "0.6.0";
/// Prefix of this driver's CDI spec files.
pub const SPEC_PREFIX: &str = "sriov-rs-dra_";

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

/// One allocated device of a claim, as the allocation result names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedDevice {
    pub request: String,
    pub pool: String,
    pub device: String,
}

/// A prepared device: what the kubelet gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedDevice {
    pub request: String,
    pub pool: String,
    pub device: String,
    pub address: PciAddress,
    pub cdi_ids: Vec<String>,
}

/// A prepared claim in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedClaim {
    pub namespace: String,
    pub name: String,
    pub devices: Vec<PreparedDevice>,
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
    checkpoint: Checkpoint,
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

impl Preparer {
    /// Opens (or starts) the checkpoint in `plugin_dir`.
    pub fn open(
        root: HostRoot,
        node: &str,
        plugin_dir: &Path,
        cdi_dir: &Path,
    ) -> Result<Self, PrepareError> {
        let checkpoint_path = plugin_dir.join("checkpoint.json");
        let checkpoint = match std::fs::read(&checkpoint_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| PrepareError::Checkpoint {
                path: checkpoint_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Checkpoint {
                version: 1,
                ..Default::default()
            },
            Err(e) => return Err(io(&checkpoint_path)(e)),
        };
        Ok(Self {
            root,
            node: node.to_string(),
            cdi_dir: cdi_dir.to_path_buf(),
            checkpoint_path,
            checkpoint,
        })
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

    /// Prepares a claim (see the module docs).
    pub fn prepare(
        &mut self,
        uid: &str,
        namespace: &str,
        name: &str,
        devices: &[AllocatedDevice],
    ) -> Result<Vec<PreparedDevice>, PrepareError> {
        if let Some(c) = self.checkpoint.claims.get(uid) {
            return Ok(c.devices.clone());
        }
        let mut prepared = Vec::with_capacity(devices.len());
        let mut cdi_devices = Vec::with_capacity(devices.len());
        for d in devices {
            if d.pool != self.node {
                return Err(PrepareError::WrongPool {
                    device: d.device.clone(),
                    pool: d.pool.clone(),
                    node: self.node.clone(),
                });
            }
            let address = address_of(&d.device)
                .ok_or_else(|| PrepareError::UnknownDevice(d.device.clone()))?;
            if let Some((other, _)) = self
                .checkpoint
                .claims
                .iter()
                .find(|(_, c)| c.devices.iter().any(|p| p.address == address))
            {
                return Err(PrepareError::InUse {
                    device: d.device.clone(),
                    other: other.clone(),
                });
            }
            let f =
                PciFunction::read(&self.root, &address).map_err(|source| PrepareError::Gone {
                    device: d.device.clone(),
                    address,
                    source: Box::new(source),
                })?;
            if f.vf.is_none() {
                return Err(PrepareError::UnknownDevice(d.device.clone()));
            }
            let cdi_name = format!("{uid}-{}", d.device);
            let env_name = d.device.replace('-', "_");
            let mut nodes = Vec::new();
            if f.driver.as_deref() == Some("vfio-pci")
                && let Some(g) = f.iommu_group
            {
                nodes.push(json!({"path": format!("/dev/vfio/{g}"), "hostPath": format!("/dev/vfio/{g}"), "permissions": "rw"}));
                nodes.push(json!({"path": "/dev/vfio/vfio", "hostPath": "/dev/vfio/vfio", "permissions": "rw"}));
            }
            let mut edits =
                json!({"env": [format!("SRIOVNETWORK_VF_DEVICE_{env_name}={address}")]});
            if !nodes.is_empty() {
                edits["deviceNodes"] = json!(nodes);
            }
            cdi_devices.push(json!({"name": cdi_name, "containerEdits": edits}));
            prepared.push(PreparedDevice {
                request: d.request.clone(),
                pool: d.pool.clone(),
                device: d.device.clone(),
                address,
                cdi_ids: vec![format!("{CDI_KIND}={cdi_name}")],
            });
        }
        let spec = json!({
            "cdiVersion": CDI_VERSION,
            "kind": CDI_KIND,
            "annotations": {format!("{UPSTREAM_DOMAIN}/claim"): format!("{namespace}/{name}")},
            "devices": cdi_devices,
        });
        let path = self.spec_path(uid);
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&spec).expect("JSON value"),
        )?;
        self.checkpoint.claims.insert(
            uid.to_string(),
            PreparedClaim {
                namespace: namespace.to_string(),
                name: name.to_string(),
                devices: prepared.clone(),
            },
        );
        if let Err(e) = self.save() {
            self.checkpoint.claims.remove(uid);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(prepared)
    }

    /// Unprepares a claim by UID (see the module docs).
    pub fn unprepare(&mut self, uid: &str) -> Result<(), PrepareError> {
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
