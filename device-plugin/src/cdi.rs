//! CDI mode (`--use-cdi`): instead of device specs, Allocate answers with
//! CDI device names (`<prefix>/net-pci=<pci address>`; for `auxNetDevice`
//! pools `<prefix>/net-sf=<aux device>`, as upstream), and a CDI spec file
//! per pool, `<cdi dir>/<prefix>-<name>.json` (default dir `/var/run/cdi`
//! under the host root), tells the runtime which device nodes each name
//! stands for. The spec is rewritten (atomically) before each Allocate
//! answer, so it always covers the devices just handed out.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::DeviceType;
use crate::pools::{Pool, PoolDevice};

/// The CDI spec version written.
pub const CDI_VERSION: &str = "0.6.0";

/// The CDI kind of a pool: `<prefix>/net-pci`, `<prefix>/net-sf` for
/// auxiliary devices.
pub fn kind(prefix: &str, t: DeviceType) -> String {
    match t {
        DeviceType::AuxNetDevice => format!("{prefix}/net-sf"),
        _ => format!("{prefix}/net-pci"),
    }
}

/// The fully qualified CDI name of a device.
pub fn device_name(prefix: &str, t: DeviceType, pd: &PoolDevice) -> String {
    format!("{}={}", kind(prefix, t), pd.device.id())
}

/// The spec file of a pool.
pub fn spec_path(dir: &Path, prefix: &str, name: &str) -> PathBuf {
    dir.join(format!("{prefix}-{name}.json"))
}

/// The CDI spec of a pool: one device per pool device, with its device
/// nodes (`paths` gives them per device).
pub fn spec(pool: &Pool, paths: impl Fn(&PoolDevice) -> Vec<String>) -> Value {
    let devices: Vec<Value> = pool
        .devices
        .values()
        .map(|pd| {
            let nodes: Vec<Value> = paths(pd)
                .into_iter()
                .map(|p| {
                    let perm = crate::allocate::permissions(&p);
                    json!({ "path": p, "permissions": perm })
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

/// Writes a pool's spec atomically.
pub fn write_spec(dir: &Path, pool: &Pool, spec: &Value) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = spec_path(dir, &pool.config.prefix, &pool.config.name);
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(spec).expect("JSON value"))?;
        std::fs::rename(&tmp, &path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map(|()| path)
}
