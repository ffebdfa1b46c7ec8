//! What a container gets for its devices: environment variables, device
//! nodes, and a device-info file per device.
//!
//! - `PCIDEVICE_<PREFIX>_<NAME>` (upper case; `.`, `/`, `-` made `_`): the
//!   device IDs (PCI addresses; auxiliary device names such as
//!   `mlx5_core.sf.4` for `auxNetDevice` pools), comma separated.
//! - `PCIDEVICE_<PREFIX>_<NAME>_INFO`: JSON, per address: `generic.deviceID`,
//!   `vfio.mount`/`vfio.dev-mount`, `rdma.*`, `vhost.mount`, `tun.mount`,
//!   `vdpa.mount` (vhost vDPA), `extra` (the resource's `additionalInfo`,
//!   looked up by the PCI address, for an auxiliary device its parent's).
//! - Device specs: vfio-pci devices get `/dev/vfio/vfio` and
//!   `/dev/vfio/<group>`; RDMA devices in `isRdma: true` pools their
//!   `/dev/infiniband/*` nodes (as upstream: other pools do not mount them);
//!   `needVhostNet` pools `/dev/vhost-net` and `/dev/net/tun`; vhost vDPA
//!   devices (`vdpaType: vhost` pools) their `/dev/vhost-vdpa-N` (`mrw`).
//!   Paths are the node's.
//! - Device-info file (device-info-spec 1.1.0), written atomically (temp
//!   file and rename; the directory is a tmpfs on nodes, so no fsync) to
//!   `<devinfo dir>/<prefix>-<name>-<pci>-device.json`: type `pci`, or
//!   `vdpa` for a VF with a vDPA device (in a `vdpaType` pool). Auxiliary
//!   devices get none, as upstream.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sriov_host::HostRoot;

use crate::api::{ContainerAllocateResponse, DeviceSpec};
use crate::pools::{Pool, PoolDevice};

/// The device-info-spec version written.
pub const DEVICE_INFO_VERSION: &str = "1.1.0";

/// Why an allocation failed.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("device {id:?} is not in pool {pool} (ask for an ID from ListAndWatch)")]
    UnknownDevice { id: String, pool: String },
    #[error("cannot write CDI spec in {dir}: {source}")]
    CdiSpec {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write device-info file {path}: {source} (check --devinfo-dir)")]
    DeviceInfo {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `PCIDEVICE_<PREFIX>_<NAME>` for a full resource name.
pub fn env_name(resource: &str) -> String {
    let mut s = String::from("PCIDEVICE_");
    s.extend(resource.chars().map(|c| match c {
        '.' | '/' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    s
}

/// `<prefix>-<name>-<pci>-device.json`.
pub fn device_info_file(dir: &Path, prefix: &str, name: &str, pci: &str) -> PathBuf {
    dir.join(format!("{prefix}-{name}-{pci}-device.json"))
}

/// The RDMA character devices of a function: `rdma_cm` plus its
/// `uverbsN`, `umadN` and `issmN` (from sysfs `infiniband_verbs/` and
/// `infiniband_mad/`), as node paths.
pub fn rdma_char_devices(root: &HostRoot, pd: &PoolDevice) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    if pd.device.rdma.is_empty() {
        return out;
    }
    out.insert("rdma_cm", "/dev/infiniband/rdma_cm".to_string());
    let dir = pd.device.sysfs_dir(root);
    for (sub, keys) in [
        ("infiniband_verbs", &[("uverbs", "uverbs")][..]),
        ("infiniband_mad", &[("umad", "umad"), ("issm", "issm")][..]),
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            for (prefix, key) in keys {
                if n.starts_with(prefix) && !out.contains_key(key) {
                    out.insert(key, format!("/dev/infiniband/{n}"));
                }
            }
        }
    }
    out
}

/// Where responses look for node facts and write files.
#[derive(Debug, Clone)]
pub struct AllocateContext {
    pub root: HostRoot,
    /// The device-info directory, already resolved under the host root.
    pub devinfo_dir: PathBuf,
    /// CDI mode: the CDI spec directory (resolved under the host root).
    pub cdi_dir: Option<PathBuf>,
}

/// What a pool's selectors ask Allocate to add beyond the devices' own
/// nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `needVhostNet`: `/dev/vhost-net` and `/dev/net/tun`.
    pub vhost_net: bool,
    /// `isRdma: true`: the RDMA char devices and `rdma` info (as upstream,
    /// only pools that select RDMA devices mount them).
    pub rdma: bool,
    /// `vdpaType`: the vDPA device (vhost char device, `vdpa` info,
    /// device-info type `vdpa`), as upstream only in such pools.
    pub vdpa: bool,
}

impl Needs {
    /// From a pool's config: any of its selector sets asking for it.
    pub fn of(rc: &crate::config::ResourceConfig) -> Needs {
        Needs {
            vhost_net: rc.selectors.iter().any(|s| s.need_vhost_net),
            rdma: rc.selectors.iter().any(|s| s.is_rdma == Some(true)),
            vdpa: rc.selectors.iter().any(|s| s.vdpa_type.is_some()),
        }
    }
}

/// The device nodes (node paths) one device needs in a container.
pub fn device_nodes(ctx: &AllocateContext, needs: Needs, pd: &PoolDevice) -> Vec<String> {
    let mut out = Vec::new();
    if pd.device.is_vfio()
        && let Some(g) = pd.device.iommu_group
    {
        out.push("/dev/vfio/vfio".to_string());
        out.push(format!("/dev/vfio/{g}"));
    }
    if needs.rdma {
        out.extend(rdma_char_devices(&ctx.root, pd).into_values());
    }
    if needs.vhost_net {
        out.push("/dev/vhost-net".to_string());
        out.push("/dev/net/tun".to_string());
    }
    if needs.vdpa
        && let Some(p) = vhost_vdpa_path(pd)
    {
        out.push(p.to_string());
    }
    out
}

/// The `/dev/vhost-vdpa-N` of a device bound to vhost_vdpa.
fn vhost_vdpa_path(pd: &PoolDevice) -> Option<&str> {
    pd.device
        .vdpa
        .as_ref()
        .filter(|v| v.kind == crate::device::VdpaType::Vhost)
        .and_then(|v| v.vhost_path.as_deref())
}

/// The cgroup permissions of a device node: `mrw` for vhost-vdpa (as
/// upstream), else `rw`.
pub fn permissions(path: &str) -> &'static str {
    if path.starts_with("/dev/vhost-vdpa-") {
        "mrw"
    } else {
        "rw"
    }
}

fn spec(path: &str) -> DeviceSpec {
    DeviceSpec {
        container_path: path.to_string(),
        host_path: path.to_string(),
        permissions: permissions(path).to_string(),
    }
}

/// The response for one container asking for `ids` from `pool`. Nothing is
/// written unless every ID is in the pool.
pub fn container_response(
    ctx: &AllocateContext,
    pool: &Pool,
    ids: &[String],
) -> Result<ContainerAllocateResponse, AllocateError> {
    let rc = &pool.config;
    let resource = rc.resource_name();
    let mut devices = Vec::with_capacity(ids.len());
    for id in ids {
        let pd = crate::device::DeviceId::parse(id)
            .and_then(|a| pool.devices.get(&a))
            .ok_or_else(|| AllocateError::UnknownDevice {
                id: id.clone(),
                pool: resource.clone(),
            })?;
        devices.push(pd);
    }
    let needs = Needs::of(rc);
    let mut specs: Vec<DeviceSpec> = Vec::new();
    for pd in &devices {
        for p in device_nodes(ctx, needs, pd) {
            if !specs.iter().any(|s| s.host_path == p) {
                specs.push(spec(&p));
            }
        }
    }
    let mut info = serde_json::Map::new();
    let mut addresses = Vec::with_capacity(devices.len());
    for pd in &devices {
        let pci = pd.device.address.to_string();
        let id = pd.device.id().to_string();
        let mut entry = serde_json::Map::new();
        entry.insert("generic".into(), json!({ "deviceID": id }));
        if pd.device.is_vfio()
            && let Some(g) = pd.device.iommu_group
        {
            let dev = format!("/dev/vfio/{g}");
            entry.insert(
                "vfio".into(),
                json!({ "mount": "/dev/vfio/vfio", "dev-mount": dev }),
            );
        }
        let rdma = if needs.rdma {
            rdma_char_devices(&ctx.root, pd)
        } else {
            BTreeMap::new()
        };
        if !rdma.is_empty() {
            let mut m: serde_json::Map<String, Value> = rdma
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            m.insert("device".into(), json!(pd.device.rdma[0]));
            entry.insert("rdma".into(), Value::Object(m));
        }
        if needs.vhost_net {
            entry.insert("vhost".into(), json!({ "mount": "/dev/vhost-net" }));
            entry.insert("tun".into(), json!({ "mount": "/dev/net/tun" }));
        }
        if needs.vdpa
            && let Some(p) = vhost_vdpa_path(pd)
        {
            entry.insert("vdpa".into(), json!({ "mount": p }));
        }
        let extra = rc.extra_for(&pci);
        if !extra.is_empty() {
            entry.insert("extra".into(), json!(extra));
        }
        info.insert(id.clone(), Value::Object(entry));
        addresses.push(id);
    }
    for pd in devices.iter().filter(|pd| pd.device.aux.is_none()) {
        write_device_info(ctx, pool, pd, needs)?;
    }
    let mut cdi_devices = Vec::new();
    if let Some(dir) = &ctx.cdi_dir {
        let spec = crate::cdi::spec(pool, |pd| device_nodes(ctx, needs, pd));
        crate::cdi::write_spec(dir, pool, &spec).map_err(|source| AllocateError::CdiSpec {
            dir: dir.clone(),
            source,
        })?;
        cdi_devices = devices
            .iter()
            .map(|pd| crate::api::CdiDevice {
                name: crate::cdi::device_name(&rc.prefix, rc.device_type, pd),
            })
            .collect();
        specs.clear();
    }
    let name = env_name(&resource);
    let mut envs = std::collections::HashMap::new();
    envs.insert(format!("{name}_INFO"), Value::Object(info).to_string());
    envs.insert(name, addresses.join(","));
    Ok(ContainerAllocateResponse {
        envs,
        mounts: Vec::new(),
        devices: specs,
        annotations: Default::default(),
        cdi_devices,
    })
}

/// The device-info document of one device: type `vdpa` for a device with
/// a vDPA device (as upstream: `parent-device` is the vDPA device's name,
/// `driver` `vhost`/`virtio`, `path` its `/dev/vhost-vdpa-N`), else `pci`.
pub fn device_info(pd: &PoolDevice, needs: Needs) -> Value {
    if needs.vdpa
        && let Some(v) = &pd.device.vdpa
    {
        let mut vdpa = serde_json::Map::new();
        vdpa.insert("parent-device".into(), json!(v.name));
        vdpa.insert("driver".into(), json!(v.kind.as_str()));
        if let Some(p) = &v.vhost_path {
            vdpa.insert("path".into(), json!(p));
        }
        vdpa.insert("pci-address".into(), json!(pd.device.address.to_string()));
        if let Some(pf) = pd.device.pf {
            vdpa.insert("pf-pci-address".into(), json!(pf.to_string()));
        }
        return json!({ "type": "vdpa", "version": DEVICE_INFO_VERSION, "vdpa": vdpa });
    }
    let mut pci = serde_json::Map::new();
    pci.insert("pci-address".into(), json!(pd.device.address.to_string()));
    if let Some(pf) = pd.device.pf {
        pci.insert("pf-pci-address".into(), json!(pf.to_string()));
    }
    if needs.vhost_net {
        pci.insert("vhost-net".into(), json!("/dev/vhost-net"));
    }
    if needs.rdma
        && let Some(r) = pd.device.rdma.first()
    {
        pci.insert("rdma-device".into(), json!(r));
    }
    json!({ "type": "pci", "version": DEVICE_INFO_VERSION, "pci": pci })
}

fn write_device_info(
    ctx: &AllocateContext,
    pool: &Pool,
    pd: &PoolDevice,
    needs: Needs,
) -> Result<(), AllocateError> {
    let rc = &pool.config;
    let path = device_info_file(
        &ctx.devinfo_dir,
        &rc.prefix,
        &rc.name,
        &pd.device.address.to_string(),
    );
    let err = |source| AllocateError::DeviceInfo {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&ctx.devinfo_dir).map_err(err)?;
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let body = serde_json::to_vec(&device_info(pd, needs)).expect("JSON value");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_upstream() {
        assert_eq!(
            env_name("intel.com/intel_sriov_netdevice"),
            "PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE"
        );
        assert_eq!(env_name("my-vendor.io/dpdk"), "PCIDEVICE_MY_VENDOR_IO_DPDK");
    }

    #[test]
    fn device_info_file_names() {
        assert_eq!(
            device_info_file(Path::new("/d"), "intel.com", "sriov", "0000:3b:02.0"),
            PathBuf::from("/d/intel.com-sriov-0000:3b:02.0-device.json")
        );
    }
}
