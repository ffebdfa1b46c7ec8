//! What a container gets for its devices: environment variables, device
//! nodes, and a device-info file per device, as upstream builds them.
//!
//! - `PCIDEVICE_<PREFIX>_<NAME>` (upstream's rule: `PCIDEVICE_`, prefix,
//!   `_`, name, `.` made `_`, upper case; `-` stays): the device IDs (PCI
//!   addresses; auxiliary device names such as `mlx5_core.sf.4` for
//!   `auxNetDevice` pools), comma separated.
//! - `PCIDEVICE_<PREFIX>_<NAME>_INFO`: JSON, per device ID, per upstream
//!   info provider: `generic.deviceID`; `vfio.mount`/`vfio.dev-mount`
//!   (vfio-pci; `dev-mount` is the container path `/dev/vfio/<group>`);
//!   `uio.mount` (`/dev/uioN`; uio, igb_uio, uio_pci_generic); `extra`
//!   (the resource's `additionalInfo`, `"*"` overlaid with the PCI
//!   address's, for an auxiliary device its parent's); `rdma.rdma_dev`,
//!   `rdma.rdma_cm`, `rdma.uverbs`, `rdma.umad`, `rdma.issm` (the device's
//!   selector set has `isRdma`); `vhost.net-mount`/`vhost.tun-mount`
//!   (`needVhostNet`, when the node has `/dev/vhost-net`); `vdpa.mount`
//!   (`vdpaType`; the `/dev/vhost-vdpa-N` of a vhost one).
//! - Device specs (all `rw`): vfio-pci `/dev/vfio/vfio` and the group node
//!   (no-IOMMU: host `/dev/vfio/noiommu-<group>` as `/dev/vfio/<group>`);
//!   UIO `/dev/uioN`; `isRdma` the RDMA char devices; `needVhostNet`
//!   `/dev/vhost-net` and `/dev/net/tun`, each when the node has it; vhost
//!   vDPA `/dev/vhost-vdpa-N`. What a device gets depends on the selector
//!   set that claimed it ([`crate::pools::PoolDevice::selector`]).
//! - Device-info file (device-info-spec 1.1.0), written atomically (temp
//!   file and rename; the directory is a tmpfs on nodes, so no fsync) to
//!   `<devinfo dir>/<prefix>-<name>-<pci>-device.json` for `netDevice`
//!   pools: type `pci` (`rdma-device` = every RDMA device, comma joined,
//!   for `isRdma`), or `vdpa` for a VF with a vDPA device (`vdpaType`).
//!   Auxiliary devices and accelerators get none, as upstream.
//! - CDI mode: no device specs; the annotation
//!   `cdi.k8s.io/<prefix>_<kind>` = the devices' CDI names, comma joined
//!   (see [`crate::cdi`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sriov_host::HostRoot;
use sriov_host::files::WriteOptions;

use crate::api::{ContainerAllocateResponse, DeviceSpec};
use crate::config::ResourceConfig;
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

/// `PCIDEVICE_<PREFIX>_<NAME>`, as upstream builds it from the prefix and
/// the resource name: `.` made `_`, upper case (`-` stays).
pub fn env_name(prefix: &str, name: &str) -> String {
    format!("PCIDEVICE_{prefix}_{name}")
        .replace('.', "_")
        .to_uppercase()
}

/// `<prefix>-<name>-<pci>-device.json`.
pub fn device_info_file(dir: &Path, prefix: &str, name: &str, pci: &str) -> PathBuf {
    dir.join(format!("{prefix}-{name}-{pci}-device.json"))
}

/// The RDMA character devices of a pool device with an RDMA device
/// ([`sriov_host::devnodes::rdma_char_devices`]); none without.
pub fn rdma_char_devices(root: &HostRoot, pd: &PoolDevice) -> BTreeMap<&'static str, String> {
    if pd.device.rdma.is_empty() {
        return BTreeMap::new();
    }
    sriov_host::devnodes::rdma_char_devices(&pd.device.sysfs_dir(root))
}

pub use crate::cdi::{DeviceNode, PERMISSIONS};

/// Where responses look for node facts and write files.
#[derive(Debug, Clone)]
pub struct AllocateContext {
    pub root: HostRoot,
    /// The device-info directory, already resolved under the host root.
    pub devinfo_dir: PathBuf,
    /// CDI mode: the CDI spec directory (resolved under the host root).
    pub cdi_dir: Option<PathBuf>,
}

/// What the selector set that claimed a device asks Allocate to add
/// beyond the device's own nodes (as upstream, per selector set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `needVhostNet`: `/dev/vhost-net` and `/dev/net/tun`.
    pub vhost_net: bool,
    /// `isRdma: true`: the RDMA char devices and `rdma` info.
    pub rdma: bool,
    /// `vdpaType`: the vDPA device (vhost char device, `vdpa` info,
    /// device-info type `vdpa`).
    pub vdpa: bool,
}

impl Needs {
    /// From selector set `index` of a pool's config.
    pub fn of(rc: &crate::config::ResourceConfig, index: usize) -> Needs {
        rc.selectors
            .get(index)
            .map(|s| Needs {
                vhost_net: s.need_vhost_net,
                rdma: s.is_rdma,
                vdpa: s.vdpa_type.is_some(),
            })
            .unwrap_or_default()
    }

    /// For a pool device: from the selector set that claimed it.
    pub fn of_device(rc: &crate::config::ResourceConfig, pd: &PoolDevice) -> Needs {
        Needs::of(rc, pd.selector)
    }
}

/// The device nodes one device needs in a container.
pub fn device_nodes(ctx: &AllocateContext, needs: Needs, pd: &PoolDevice) -> Vec<DeviceNode> {
    let mut out = Vec::new();
    if pd.device.is_vfio()
        && let Some(g) = pd.device.iommu_group
    {
        let n = sriov_host::devnodes::vfio_group_node(&ctx.root, g);
        out.push(DeviceNode::same("/dev/vfio/vfio"));
        out.push(DeviceNode {
            host_path: n.host_path,
            container_path: n.container_path,
        });
    }
    if pd.device.is_uio() && pd.device.aux.is_none() {
        out.extend(
            sriov_host::devnodes::uio_nodes(&ctx.root, &pd.device.address)
                .into_iter()
                .map(DeviceNode::same),
        );
    }
    if needs.rdma {
        out.extend(
            rdma_char_devices(&ctx.root, pd)
                .into_values()
                .map(DeviceNode::same),
        );
    }
    if needs.vhost_net {
        // each only when the node has it
        for p in ["vhost-net", "net/tun"] {
            if ctx.root.dev(p).exists() {
                out.push(DeviceNode::same(format!("/dev/{p}")));
            }
        }
    }
    if needs.vdpa
        && let Some(p) = vhost_vdpa_path(pd)
    {
        out.push(DeviceNode::same(p));
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

fn spec(n: &DeviceNode) -> DeviceSpec {
    DeviceSpec {
        container_path: n.container_path.clone(),
        host_path: n.host_path.clone(),
        permissions: PERMISSIONS.to_string(),
    }
}

/// The `_INFO` entry of one device: upstream's info providers by name.
pub fn device_env_info(ctx: &AllocateContext, rc: &ResourceConfig, pd: &PoolDevice) -> Value {
    let needs = Needs::of_device(rc, pd);
    let mut entry = serde_json::Map::new();
    entry.insert(
        "generic".into(),
        json!({ "deviceID": pd.device.id().to_string() }),
    );
    if pd.device.is_vfio()
        && let Some(g) = pd.device.iommu_group
    {
        entry.insert(
            "vfio".into(),
            json!({ "mount": "/dev/vfio/vfio", "dev-mount": format!("/dev/vfio/{g}") }),
        );
    }
    if pd.device.is_uio() && pd.device.aux.is_none() {
        let mut m = serde_json::Map::new();
        if let Some(n) = sriov_host::devnodes::uio_nodes(&ctx.root, &pd.device.address).first() {
            m.insert("mount".into(), json!(n));
        }
        entry.insert("uio".into(), Value::Object(m));
    }
    if !rc.additional_info.is_empty() {
        entry.insert(
            "extra".into(),
            json!(rc.extra_for(&pd.device.address.to_string())),
        );
    }
    if needs.rdma && !pd.device.rdma.is_empty() {
        let mut m: serde_json::Map<String, Value> = rdma_char_devices(&ctx.root, pd)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        m.insert("rdma_dev".into(), json!(pd.device.rdma[0]));
        entry.insert("rdma".into(), Value::Object(m));
    }
    if needs.vhost_net && ctx.root.dev("vhost-net").exists() {
        entry.insert(
            "vhost".into(),
            json!({ "net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun" }),
        );
    }
    if needs.vdpa && pd.device.vdpa.is_some() {
        let mut m = serde_json::Map::new();
        if let Some(p) = vhost_vdpa_path(pd) {
            m.insert("mount".into(), json!(p));
        }
        entry.insert("vdpa".into(), Value::Object(m));
    }
    Value::Object(entry)
}

/// The response for one container asking for `ids` from `pool`. Nothing is
/// written unless every ID is in the pool.
pub fn container_response(
    ctx: &AllocateContext,
    pool: &Pool,
    ids: &[String],
) -> Result<ContainerAllocateResponse, AllocateError> {
    let rc: &ResourceConfig = &pool.config;
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
    let mut specs: Vec<DeviceSpec> = Vec::new();
    for pd in &devices {
        for n in device_nodes(ctx, Needs::of_device(rc, pd), pd) {
            if !specs.iter().any(|s| s.host_path == n.host_path) {
                specs.push(spec(&n));
            }
        }
    }
    let mut info = serde_json::Map::new();
    let mut ids_out = Vec::with_capacity(devices.len());
    for pd in &devices {
        let id = pd.device.id().to_string();
        info.insert(id.clone(), device_env_info(ctx, rc, pd));
        ids_out.push(id);
    }
    if rc.device_type == crate::config::DeviceType::NetDevice {
        for pd in &devices {
            write_device_info(ctx, pool, pd, Needs::of_device(rc, pd))?;
        }
    }
    let mut annotations = std::collections::HashMap::new();
    if let Some(dir) = &ctx.cdi_dir {
        let spec = crate::cdi::spec(pool, |pd| device_nodes(ctx, Needs::of_device(rc, pd), pd));
        crate::cdi::write_spec(dir, pool, &spec).map_err(|source| AllocateError::CdiSpec {
            dir: dir.clone(),
            source,
        })?;
        let (key, value) = crate::cdi::annotation(&rc.prefix, rc.device_type, &devices);
        annotations.insert(key, value);
        specs.clear();
    }
    let name = env_name(&rc.prefix, &rc.name);
    let mut envs = std::collections::HashMap::new();
    envs.insert(format!("{name}_INFO"), Value::Object(info).to_string());
    envs.insert(name, ids_out.join(","));
    Ok(ContainerAllocateResponse {
        envs,
        mounts: Vec::new(),
        devices: specs,
        annotations,
        cdi_devices: Vec::new(),
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
    if needs.rdma && !pd.device.rdma.is_empty() {
        // every RDMA device of the function, as upstream
        pci.insert("rdma-device".into(), json!(pd.device.rdma.join(",")));
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
    let body = serde_json::to_vec(&device_info(pd, needs)).expect("JSON value");
    sriov_host::files::write_atomic(&path, &body, &WriteOptions::runtime(0o644))
        .map_err(|e| err(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_upstream() {
        assert_eq!(
            env_name("intel.com", "intel_sriov_netdevice"),
            "PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE"
        );
        // upstream keeps '-' (only '.' becomes '_')
        assert_eq!(
            env_name("my-vendor.io", "sriov-dpdk"),
            "PCIDEVICE_MY-VENDOR_IO_SRIOV-DPDK"
        );
    }

    #[test]
    fn device_info_file_names() {
        assert_eq!(
            device_info_file(Path::new("/d"), "intel.com", "sriov", "0000:3b:02.0"),
            PathBuf::from("/d/intel.com-sriov-0000:3b:02.0-device.json")
        );
    }
}
