//! The device plugin's config file as this driver's device selection: one
//! config source for a node that runs both.
//!
//! `--config-file` names the sriov-network-device-plugin `config.json`
//! (`{"resourceList": [...]}`, the file the operator renders and the
//! device plugin reads). It is read with the device plugin's own parser and
//! matched with its own selectors ([`sriov_device_plugin::config`],
//! [`sriov_device_plugin::pools::claim`]), so a VF lands in the same pool
//! for both: the first `resourceList` entry whose selectors match it.
//! `--resources` names the pools (`resourceName`) this driver serves; the
//! device plugin is told the same names (its `--dra-resources`) and leaves
//! them alone, so each pool is served by exactly one of the two.
//!
//! A VF is published when its pool is served here, with the pool's full
//! name (`<prefix>/<resourceName>`, the name the device plugin would have
//! advertised) as the attribute `k8s.cni.cncf.io/resourceName`: the
//! attribute Multus matches against a NAD's
//! `k8s.v1.cni.cncf.io/resourceName` annotation when it resolves a DRA
//! device (multus-cni PR #1492), so a NAD written for the device plugin's
//! pool works unchanged for the DRA driver's. A VF no pool claims, or one
//! claimed by a pool served by the device plugin, is not published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sriov_device_plugin::config::{Config, ConfigError, ResourceConfig};
use sriov_host::{HostRoot, Node, PciAddress};

/// The pools of the device plugin's config and the ones served here.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The config file, re-read at every rescan.
    pub path: PathBuf,
    /// The prefix of entries without `resourcePrefix` (the device plugin's
    /// `--resource-prefix`).
    pub default_prefix: String,
    /// The `resourceName`s served here; empty: every pool.
    pub served: Vec<String>,
}

/// A config read and checked against [`PoolConfig::served`].
#[derive(Debug, Clone)]
pub struct Pools {
    /// The file's text it was read from (an unchanged file is not parsed
    /// and reported again).
    text: String,
    /// For discovery (what the selectors need scanned).
    config: Arc<Config>,
    /// The same entries, as the selector matching takes them.
    resources: Vec<Arc<ResourceConfig>>,
    served: Vec<String>,
}

impl PoolConfig {
    /// Reads the config file; `last` (the previous read) is returned as it
    /// was when the file did not change. Entries the device plugin would
    /// skip are skipped here too; they, and a served name that no entry has
    /// (nothing is published for it), are logged once per change of the file.
    pub fn load(&self, last: Option<&Pools>) -> Result<Pools, ConfigError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| ConfigError::Read {
            path: self.path.clone(),
            source,
        })?;
        if let Some(last) = last.filter(|l| l.text == text) {
            return Ok(last.clone());
        }
        let config = Config::parse(
            &text,
            &self.path.display().to_string(),
            &self.default_prefix,
        )?;
        let mut pools = Pools::new(config, &self.served, &self.path);
        pools.text = text;
        Ok(pools)
    }
}

impl Pools {
    /// The pools of `config`, serving `served` (empty: all).
    pub fn new(config: Config, served: &[String], origin: &Path) -> Pools {
        for s in &config.skipped {
            tracing::warn!(config = %origin.display(), "{s}");
        }
        for name in served {
            if !config.resources.iter().any(|r| &r.name == name) {
                tracing::warn!(config = %origin.display(), resource = %name,
                    "--resources names a pool the config file does not have; nothing is published for it");
            }
        }
        Pools {
            text: String::new(),
            resources: config.resources.iter().cloned().map(Arc::new).collect(),
            config: Arc::new(config),
            served: served.to_vec(),
        }
    }

    fn serves(&self, r: &ResourceConfig) -> bool {
        self.served.is_empty() || self.served.iter().any(|s| s == &r.name)
    }

    /// The full resource name of every VF of `node` whose pool is served
    /// here, by address.
    pub fn assign(&self, root: &HostRoot, node: &Node) -> BTreeMap<PciAddress, String> {
        let (candidates, env) = sriov_device_plugin::pools::discover(root, &self.config, node);
        candidates
            .iter()
            .filter(|d| d.vf_index.is_some())
            .filter_map(|d| {
                let (r, _) = sriov_device_plugin::pools::claim(&self.resources, d, &env)?;
                self.serves(r).then(|| (d.address, r.resource_name()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_sim::kernel::write_static_tree;
    use sriov_sim::node::NodeSpec;

    fn node() -> (tempfile::TempDir, HostRoot, Node) {
        let tmp = tempfile::tempdir().unwrap();
        write_static_tree(tmp.path(), &NodeSpec::gpu()).unwrap();
        let root = HostRoot::new(tmp.path());
        let node = sriov_host::scan(&root).unwrap();
        (tmp, root, node)
    }

    fn pools(text: &str, served: &[&str]) -> Pools {
        let config = Config::parse(text, "test", "intel.com").unwrap();
        let served: Vec<String> = served.iter().map(|s| s.to_string()).collect();
        Pools::new(config, &served, Path::new("test"))
    }

    #[test]
    fn the_first_matching_pool_takes_a_vf_and_only_served_pools_publish() {
        let (_tmp, root, node) = node();
        // Every VF of a Mellanox PF, then the Intel ones; a catch-all pool
        // after them takes nothing (a VF goes to its first match).
        let text = r#"{"resourceList": [
            {"resourceName": "mlx", "resourcePrefix": "nvidia.com", "selectors": {"vendors": ["15b3"]}},
            {"resourceName": "intel_vfs", "selectors": {"vendors": ["8086"]}},
            {"resourceName": "rest", "selectors": {}}
        ]}"#;
        let all = pools(text, &[]).assign(&root, &node);
        let vfs: Vec<_> = node.vfs().map(|v| v.address).collect();
        assert!(!vfs.is_empty());
        assert_eq!(all.len(), vfs.len(), "every VF is in a pool");
        for vf in node.vfs() {
            let pf = node.pf_of(&vf.address).unwrap();
            let want = match pf.vendor {
                0x15b3 => "nvidia.com/mlx",
                0x8086 => "intel.com/intel_vfs",
                _ => "intel.com/rest",
            };
            assert_eq!(all[&vf.address], want, "{}", vf.address);
        }
        // Served: only the Mellanox pool. The Intel VFs are the device
        // plugin's, not published here even though "rest" would match them.
        let mlx = pools(text, &["mlx"]).assign(&root, &node);
        assert!(!mlx.is_empty());
        assert!(mlx.values().all(|n| n == "nvidia.com/mlx"));
        assert_eq!(
            mlx.len(),
            node.vfs()
                .filter(|v| node.pf_of(&v.address).unwrap().vendor == 0x15b3)
                .count()
        );
    }

    #[test]
    fn pf_names_selectors_and_unknown_served_names() {
        let (_tmp, root, node) = node();
        let pf = node
            .pfs()
            .find(|p| !p.netdevs.is_empty() && p.sriov.as_ref().is_some_and(|s| s.num_vfs > 0))
            .expect("a PF with VFs and a netdev");
        let name = pf.netdevs[0].name.clone();
        let text = format!(
            r#"{{"resourceList": [{{"resourceName": "one_pf", "selectors": {{"pfNames": ["{name}"]}}}}]}}"#
        );
        let got = pools(&text, &["one_pf"]).assign(&root, &node);
        let want: Vec<PciAddress> = node
            .vfs()
            .filter(|v| node.pf_of(&v.address).map(|p| p.address) == Some(pf.address))
            .map(|v| v.address)
            .collect();
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), want);
        // A served name the config lacks publishes nothing.
        assert!(pools(&text, &["other"]).assign(&root, &node).is_empty());
    }

    #[test]
    fn an_unchanged_file_is_kept_a_changed_one_read_again() {
        let (_tmp, root, node) = node();
        let dir = tempfile::tempdir().unwrap();
        let cfg = PoolConfig {
            path: dir.path().join("config.json"),
            default_prefix: "intel.com".into(),
            served: vec!["p".into()],
        };
        let write = |vendor: &str| {
            std::fs::write(
                &cfg.path,
                format!(r#"{{"resourceList": [{{"resourceName": "p", "selectors": {{"vendors": ["{vendor}"]}}}}]}}"#),
            )
            .unwrap()
        };
        write("15b3");
        let first = cfg.load(None).unwrap();
        let mlx = first.assign(&root, &node);
        assert!(!mlx.is_empty());
        let again = cfg.load(Some(&first)).unwrap();
        assert_eq!(again.text, first.text);
        assert_eq!(again.assign(&root, &node), mlx);
        write("8086");
        let changed = cfg.load(Some(&first)).unwrap();
        let intel = changed.assign(&root, &node);
        assert!(!intel.is_empty());
        assert!(
            intel.keys().all(|a| !mlx.contains_key(a)),
            "the new selectors apply"
        );
        std::fs::remove_file(&cfg.path).unwrap();
        assert!(
            cfg.load(Some(&changed)).is_err(),
            "a missing file is an error, the caller keeps the last"
        );
    }
}
