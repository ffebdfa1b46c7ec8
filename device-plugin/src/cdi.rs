//! CDI mode (`--use-cdi`), as upstream: Allocate answers no device specs
//! but the container annotation `cdi.k8s.io/<prefix>_<kind>` = the
//! devices' CDI names (`<prefix>/<kind>=<device ID>`, comma joined), which
//! runtimes with CDI enabled resolve against a spec file per pool, and
//! which every kubelet passes on (no kubelet CDI field needed).
//!
//! - Kinds: `net-pci` (netDevice), `net-accel` (accelerator), `net-sf`
//!   (auxNetDevice).
//! - Spec file: `<cdi dir>/sriov-dp-<prefix>-<kind>-<resource name>.yaml`
//!   (the name upstream's CDI library gives it; default dir `/var/run/cdi`
//!   under the host root), cdiVersion 0.5.0, one device per pool device
//!   with its device nodes (`path` in the container, `hostPath` on the
//!   node, `rw`). The content is JSON, which is YAML too. It is rewritten
//!   (atomically) when a pool is served or changes and before each
//!   Allocate answer.
//! - Spec files named `sriov-dp-*` (upstream's and ours) are removed from
//!   the CDI dir and `<root>/etc/cdi` at start and at shutdown, as
//!   upstream does; a removed pool's file is removed with it.

use std::path::{Path, PathBuf};

use sriov_host::files::WriteOptions;

use serde_json::{Value, json};

use crate::config::DeviceType;
use crate::pools::{Pool, PoolDevice};

/// The CDI spec version written (upstream's CDI library's).
pub const CDI_VERSION: &str = "0.5.0";

/// The file name prefix of every spec this plugin (or upstream's) writes.
pub const SPEC_PREFIX: &str = "sriov-dp-";

/// The annotation key prefix runtimes read CDI device requests from.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// A device node for a container: the node's path and the container's
/// (they differ for a no-IOMMU VFIO group). Allocate answers the kubelet
/// with them as `DeviceSpec`s, and CDI specs list them as `deviceNodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub host_path: String,
    pub container_path: String,
}

impl DeviceNode {
    pub(crate) fn same(p: impl Into<String>) -> DeviceNode {
        let p = p.into();
        DeviceNode {
            host_path: p.clone(),
            container_path: p,
        }
    }
}

/// The cgroup permissions of every device node: `rw`, as upstream (vhost
/// vDPA nodes included).
pub const PERMISSIONS: &str = "rw";

/// The CDI class of a pool's device type: `net-pci`, `net-accel`,
/// `net-sf`.
pub fn class(t: DeviceType) -> &'static str {
    match t {
        DeviceType::NetDevice => "net-pci",
        DeviceType::Accelerator => "net-accel",
        DeviceType::AuxNetDevice => "net-sf",
    }
}

/// The CDI kind of a pool: `<prefix>/<class>`.
pub fn kind(prefix: &str, t: DeviceType) -> String {
    format!("{prefix}/{}", class(t))
}

/// The fully qualified CDI name of a device.
pub fn device_name(prefix: &str, t: DeviceType, pd: &PoolDevice) -> String {
    format!("{}={}", kind(prefix, t), pd.device.id())
}

/// The container annotation for `devices` of a pool: (key, value).
pub fn annotation(prefix: &str, t: DeviceType, devices: &[&PoolDevice]) -> (String, String) {
    let key = format!("{ANNOTATION_PREFIX}{prefix}_{}", class(t));
    let value = devices
        .iter()
        .map(|pd| device_name(prefix, t, pd))
        .collect::<Vec<_>>()
        .join(",");
    (key, value)
}

/// The spec file of a pool: `sriov-dp-<prefix>-<class>-<name>.yaml`.
pub fn spec_path(dir: &Path, prefix: &str, t: DeviceType, name: &str) -> PathBuf {
    dir.join(format!("{SPEC_PREFIX}{prefix}-{}-{name}.yaml", class(t)))
}

/// The CDI spec of a pool: one device per pool device, with its device
/// nodes (`nodes` gives them per device).
pub fn spec(pool: &Pool, nodes: impl Fn(&PoolDevice) -> Vec<DeviceNode>) -> Value {
    let devices: Vec<Value> = pool
        .devices
        .values()
        .map(|pd| {
            let nodes: Vec<Value> = nodes(pd)
                .into_iter()
                .map(|n| {
                    json!({
                        "path": n.container_path,
                        "hostPath": n.host_path,
                        "permissions": PERMISSIONS,
                    })
                })
                .collect();
            json!({
                "name": pd.device.id().to_string(),
                "containerEdits": { "deviceNodes": nodes }
            })
        })
        .collect();
    json!({
        "cdiVersion": CDI_VERSION,
        "kind": kind(&pool.config.prefix, pool.config.device_type),
        "devices": devices,
    })
}

/// Writes a pool's spec atomically; returns its path.
pub fn write_spec(dir: &Path, pool: &Pool, spec: &Value) -> std::io::Result<PathBuf> {
    let rc = &pool.config;
    let path = spec_path(dir, &rc.prefix, rc.device_type, &rc.name);
    let body = serde_json::to_vec_pretty(spec).expect("JSON value");
    sriov_host::files::write_atomic(&path, &body, &WriteOptions::runtime(0o644))?;
    Ok(path)
}

/// Removes a pool's spec file (a removed pool).
pub fn remove_spec(dir: &Path, pool: &Pool) {
    let rc = &pool.config;
    let _ = std::fs::remove_file(spec_path(dir, &rc.prefix, rc.device_type, &rc.name));
}

/// Removes every `sriov-dp-*` spec file in `dirs` (missing dirs are
/// fine); returns how many were removed.
pub fn cleanup_specs(dirs: &[PathBuf]) -> usize {
    let mut n = 0;
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(SPEC_PREFIX) {
                match std::fs::remove_file(e.path()) {
                    Ok(()) => n += 1,
                    Err(err) => {
                        tracing::warn!(path = %e.path().display(), error = %err, "cannot remove old CDI spec")
                    }
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_upstream() {
        assert_eq!(
            spec_path(
                Path::new("/var/run/cdi"),
                "intel.com",
                DeviceType::NetDevice,
                "sriov"
            ),
            PathBuf::from("/var/run/cdi/sriov-dp-intel.com-net-pci-sriov.yaml")
        );
        assert_eq!(
            kind("intel.com", DeviceType::Accelerator),
            "intel.com/net-accel"
        );
        assert_eq!(
            kind("nvidia.com", DeviceType::AuxNetDevice),
            "nvidia.com/net-sf"
        );
    }

    #[test]
    fn cleanup_removes_only_our_specs() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("run");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("sriov-dp-intel.com-net-pci-x.yaml"), "{}").unwrap();
        std::fs::write(a.join("nvidia-gpu.yaml"), "{}").unwrap();
        let n = cleanup_specs(&[a.clone(), t.path().join("missing")]);
        assert_eq!(n, 1);
        assert!(a.join("nvidia-gpu.yaml").exists());
    }
}
