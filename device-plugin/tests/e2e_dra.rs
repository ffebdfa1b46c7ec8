//! Pools left to the DRA driver (`--dra-resources`, [`Manager::with_dra_resources`]):
//! they still claim their VFs, so a later pool whose selectors also match
//! does not take them, but they are never registered with the kubelet,
//! also after a config reload.
//!
//! [`Manager::with_dra_resources`]: sriov_device_plugin::manager::Manager::with_dra_resources

mod harness;

use std::time::Duration;

use harness::{Harness, T, ids};
use sriov_device_plugin::test_kubelet::Watch;
use sriov_sim::node::NodeSpec;

/// `mixed`: 4 E810 VFs on ens1f0 (iavf), 2 ConnectX-6 Dx VFs on ens3f0np0.
/// `dra_vfs` takes the E810 VFs first; `rest` would match them too.
const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"dra_vfs","selectors":{"pfNames":["ens1f0"]}},
  {"resourceName":"rest","selectors":{"drivers":["iavf","mlx5_core"]}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_left_to_the_dra_driver_keeps_its_vfs_and_is_never_registered() {
    let tree = tempfile::tempdir().unwrap();
    sriov_sim::kernel::write_static_tree(tree.path(), &NodeSpec::mixed()).unwrap();
    let mut h = Harness::builder(tree.path(), CONFIG)
        .manager(|m| m.with_dra_resources(vec!["dra_vfs".into()]))
        .start()
        .await;
    let ep = h.registered("intel.com/rest").await;
    let mut c = h.client(&ep).await;
    let mut w = Watch::open(&mut c).await.unwrap();
    let m = w.next(T).await.unwrap();
    assert_eq!(
        ids(&m),
        ["0000:af:00.2", "0000:af:00.3"],
        "the E810 VFs stay dra_vfs' (first match), not rest's"
    );
    // A config change (reload and rescan) keeps the pool off the kubelet.
    h.config
        .update(&CONFIG.replace("\"iavf\",\"mlx5_core\"", "\"mlx5_core\",\"iavf\""));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let regs = h.kubelet.registrations();
    assert!(
        regs.iter().all(|r| r.resource != "intel.com/dra_vfs"),
        "{regs:?}"
    );
    assert!(
        h.status
            .config_reloads
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    h.stop().await;
}
