//! End to end against a static `sriov-sim` tree: `ddpProfiles` selects by
//! the DDP profile of the PF, read with the simulator's `ddptool` stand-in
//! (`SRIOV_DDPTOOL`). Alone in its test binary: it sets the environment
//! before any thread starts.

mod harness;

use harness::{Harness, ids};
use sriov_sim::node::NodeSpec;

const NODE: &str = r#"
pfs:
  - {model: x710, address: "0000:5e:00.0", ifname: ens2f0, numa: 0, ddp_profile: "GTPv1-C/U IPv4/IPv6 payload"}
  - {model: e810, address: "0000:3b:00.0", ifname: ens1f0, numa: 0, vfs: 2, ddp_profile: "ICE COMMS Package"}
  - {model: e810, address: "0000:3b:00.1", ifname: ens1f1, numa: 0}
"#;

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"ddp_gtp","selectors":{"ddpProfiles":["GTPv1-C/U IPv4/IPv6 payload"]}},
  {"resourceName":"ddp_comms","selectors":{"vendors":["8086"],"ddpProfiles":["ICE COMMS Package"]}},
  {"resourceName":"rest","selectors":{"vendors":["8086"]}}
]}"#;

#[test]
fn ddp_profiles_select_pfs_and_their_vfs() {
    let tmp = tempfile::Builder::new().prefix("dpddp").tempdir().unwrap();
    let spec = NodeSpec::from_yaml(NODE, "test").unwrap();
    sriov_sim::kernel::write_static_tree(tmp.path(), &spec).unwrap();
    let tool = tmp.path().join(sriov_sim::ddptool::DDPTOOL_PATH);
    assert!(tool.exists());
    // SAFETY: the only test of this binary, before the runtime's threads
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(sriov_device_plugin::ddp::DDPTOOL_ENV, &tool)
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let h = Harness::start(tmp.path(), CONFIG).await;
            for (res, want) in [
                ("intel.com/ddp_gtp", vec!["0000:5e:00.0"]),
                ("intel.com/ddp_comms", vec!["0000:3b:02.0", "0000:3b:02.1"]),
                ("intel.com/rest", vec!["0000:3b:00.1"]),
            ] {
                let m = h.first_list(res).await;
                assert_eq!(ids(&m), want, "{res}");
            }
        });
}
