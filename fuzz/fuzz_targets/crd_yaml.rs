//! Policy, network and node-state YAML through the CRD types, then what the
//! operator does with them: the validation rules, the merge of the policies
//! for a node and the device-plugin config rendered from them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sriov_crds::nic_ids::NicIdList;
use sriov_crds::policy_merge::{merge_node, render_device_plugin_config};
use sriov_crds::rules::admission::{NodeView, admit_policy};
use sriov_crds::rules::network::{check_network_spec, network_warnings};
use sriov_crds::rules::policy::{NicCheck, check_policy_spec, policy_warnings};
use sriov_crds::{
    InterfaceExt, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovOperatorConfig,
};

fn pfs() -> Vec<InterfaceExt> {
    let pf = |name: &str, pci: &str, dev: &str| InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: "8086".into(),
        device_id: dev.into(),
        driver: "ice".into(),
        total_vfs: 64,
        link_type: "ETH".into(),
        ..Default::default()
    };
    vec![
        pf("ens1f0", "0000:3b:00.0", "159b"),
        pf("ens1f1", "0000:3b:00.1", "159b"),
        pf("ib0", "0000:5e:00.0", "101b"),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
        return;
    };
    let mut policies = Vec::new();
    let mut node_pfs = pfs();
    let nics = NicIdList::builtin();
    for doc in docs.into_iter().take(16) {
        if let Ok(p) = serde_json::from_value::<SriovNetworkNodePolicy>(doc.clone()) {
            let _ = check_policy_spec(&p.spec, &nics, NicCheck::KnownOnly);
            let _ = policy_warnings(&p.spec, NicCheck::KnownOnly);
            policies.push(p);
        }
        if let Ok(n) = serde_json::from_value::<SriovNetwork>(doc.clone()) {
            let _ = check_network_spec(&n.spec);
            let _ = network_warnings(&n.spec);
        }
        if let Ok(s) = serde_json::from_value::<SriovNetworkNodeState>(doc.clone())
            && let Some(status) = s.status
        {
            node_pfs.extend(status.interfaces.into_iter().take(8));
        }
        let _ = serde_json::from_value::<SriovIBNetwork>(doc.clone());
        let _ = serde_json::from_value::<SriovOperatorConfig>(doc);
    }
    let labels: BTreeMap<String, String> =
        [("kubernetes.io/hostname".to_string(), "node1".to_string())].into();
    let merge = merge_node(&policies, &labels, &node_pfs);
    let _ = render_device_plugin_config(&policies, &labels, &node_pfs, &merge, &nics);
    let nodes = [NodeView {
        name: "node1".into(),
        labels,
        pfs: Some(node_pfs),
    }];
    for p in &policies {
        let _ = admit_policy(p, &nodes, &policies, &nics, NicCheck::KnownOnly);
    }
});
