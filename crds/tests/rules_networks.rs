//! Table tests: SriovNetwork, SriovIBNetwork, SriovOperatorConfig and
//! SriovNetworkPoolConfig rules.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sriov_crds::operator_config::LogConfig;
use sriov_crds::pool_config::OvsHardwareOffloadConfig;
use sriov_crds::rules::network::{
    check_ib_network_spec, check_network_spec, ib_network_warnings, network_warnings,
};
use sriov_crds::rules::operator::{
    check_operator_config, check_pool_config, max_unavailable_nodes,
};
use sriov_crds::{
    SriovIBNetworkSpec, SriovNetworkPoolConfig, SriovNetworkPoolConfigSpec, SriovNetworkSpec,
    SriovOperatorConfig, SriovOperatorConfigSpec,
};

type NetMutate = fn(&mut SriovNetworkSpec);

fn net() -> SriovNetworkSpec {
    SriovNetworkSpec {
        resource_name: "intel_nics".into(),
        ..Default::default()
    }
}

/// Rejections (what upstream's CRD rejects), then warnings (what upstream
/// accepts), prefixed `warning: `.
fn net_messages(s: &SriovNetworkSpec) -> Vec<String> {
    check_network_spec(s)
        .iter()
        .map(ToString::to_string)
        .chain(network_warnings(s).iter().map(|w| format!("warning: {w}")))
        .collect()
}

#[test]
fn networks_accepted() {
    let cases: &[(&str, NetMutate)] = &[
        ("minimal", |_| {}),
        ("vlan 0", |s| s.vlan = Some(0)),
        ("vlan 4094 qos 7 802.1ad", |s| {
            s.vlan = Some(4094);
            s.vlan_qos = Some(7);
            s.vlan_proto = "802.1AD".into();
        }),
        ("qos 0 without vlan", |s| s.vlan_qos = Some(0)),
        ("802.1q without vlan", |s| s.vlan_proto = "802.1q".into()),
        ("rates", |s| {
            s.min_tx_rate = Some(100);
            s.max_tx_rate = Some(100);
        }),
        ("max 0 means unlimited", |s| {
            s.min_tx_rate = Some(100);
            s.max_tx_rate = Some(0);
        }),
        ("only max", |s| s.max_tx_rate = Some(10)),
        ("knobs", |s| {
            s.spoof_chk = "off".into();
            s.trust = "on".into();
            s.link_state = "disable".into();
            s.log_level = "debug".into();
        }),
        ("json strings", |s| {
            s.capabilities = r#"{"mac": true, "ips": false}"#.into();
            s.ipam = "{\n \"type\": \"host-local\",\n \"subnet\": \"10.0.0.0/24\"\n}".into();
            s.meta_plugins = r#"{"type": "tuning"}, {"type": "sbr"}"#.into();
        }),
    ];
    for (name, mutate) in cases {
        let mut s = net();
        mutate(&mut s);
        assert_eq!(net_messages(&s), Vec::<String>::new(), "case {name:?}");
    }
}

#[test]
fn networks_rejected() {
    let cases: &[(&str, NetMutate, &[&str])] = &[
        (
            "vlan 4095",
            |s| s.vlan = Some(4095),
            &["spec.vlan: 4095 is out of range; allowed: 0-4094"],
        ),
        (
            "vlan -1",
            |s| s.vlan = Some(-1),
            &["spec.vlan: -1 is out of range; allowed: 0-4094"],
        ),
        (
            "qos 8",
            |s| {
                s.vlan = Some(10);
                s.vlan_qos = Some(8);
            },
            &["spec.vlanQoS: 8 is out of range; allowed: 0-7"],
        ),
        (
            "qos without vlan",
            |s| s.vlan_qos = Some(3),
            &["warning: spec.vlanQoS: vlanQoS 3 needs a VLAN; set vlan (1-4094) or remove vlanQoS"],
        ),
        (
            "802.1ad without vlan",
            |s| s.vlan_proto = "802.1ad".into(),
            &[
                "warning: spec.vlanProto: vlanProto 802.1ad needs a VLAN; set vlan (1-4094) or remove vlanProto",
            ],
        ),
        (
            "bad proto",
            |s| s.vlan_proto = "802.1x".into(),
            &[
                "spec.vlanProto: \"802.1x\" is not allowed; use one of 802.1q, 802.1Q, 802.1ad, 802.1AD",
            ],
        ),
        (
            "max below min",
            |s| {
                s.min_tx_rate = Some(200);
                s.max_tx_rate = Some(100);
            },
            &[
                "warning: spec.maxTxRate: maxTxRate 100 is below minTxRate 200; raise maxTxRate, lower minTxRate, or set maxTxRate 0 for no limit",
            ],
        ),
        (
            "negative rate",
            |s| s.min_tx_rate = Some(-5),
            &["spec.minTxRate: -5 is out of range; allowed: >= 0"],
        ),
        (
            "spoofChk yes",
            |s| s.spoof_chk = "yes".into(),
            &["spec.spoofChk: \"yes\" is not allowed; use one of on, off"],
        ),
        (
            "trust true",
            |s| s.trust = "true".into(),
            &["spec.trust: \"true\" is not allowed; use one of on, off"],
        ),
        (
            "linkState up",
            |s| s.link_state = "up".into(),
            &["spec.linkState: \"up\" is not allowed; use one of auto, enable, disable"],
        ),
        (
            "logLevel trace",
            |s| s.log_level = "trace".into(),
            &[
                "spec.logLevel: \"trace\" is not allowed; use one of panic, error, warning, info, debug",
            ],
        ),
        (
            "empty resource",
            |s| s.resource_name.clear(),
            &[
                "warning: spec.resourceName: resource name is empty; use letters, digits, '_' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. intel_nics); no policy can create such a resource, so pods using this network can't be scheduled",
            ],
        ),
        (
            "ipam not json",
            |s| s.ipam = "{type: host-local}".into(),
            &["warning: spec.ipam: is not valid JSON: key must be a string at line 1 column 2"],
        ),
        (
            "ipam array",
            |s| s.ipam = "[]".into(),
            &[
                "warning: spec.ipam: must be a JSON object, e.g. {\"type\": \"host-local\", \"subnet\": \"10.56.217.0/24\"}",
            ],
        ),
        (
            "capabilities not bool",
            |s| s.capabilities = r#"{"mac": "yes"}"#.into(),
            &[
                "warning: spec.capabilities: capability \"mac\" must be true or false, e.g. {\"mac\": true}",
            ],
        ),
        (
            "metaPlugins without type",
            |s| s.meta_plugins = r#"{"sysctl": {}}"#.into(),
            &[
                "warning: spec.metaPlugins: must be one or more CNI plugin objects with a \"type\", separated by commas, e.g. {\"type\": \"tuning\"}",
            ],
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut s = net();
        mutate(&mut s);
        assert_eq!(net_messages(&s), *expected, "case {name:?}");
    }
}

#[test]
fn ib_networks() {
    let ok = SriovIBNetworkSpec {
        resource_name: "mlx_ib".into(),
        link_state: "enable".into(),
        capabilities: r#"{"infinibandGUID": true}"#.into(),
        ..Default::default()
    };
    assert!(check_ib_network_spec(&ok).is_empty());
    assert!(ib_network_warnings(&ok).is_empty());
    let bad = SriovIBNetworkSpec {
        resource_name: "mlx.ib".into(),
        link_state: "on".into(),
        meta_plugins: "{".into(),
        ..Default::default()
    };
    let msgs: Vec<String> = check_ib_network_spec(&bad)
        .iter()
        .map(ToString::to_string)
        .chain(
            ib_network_warnings(&bad)
                .iter()
                .map(|w| format!("warning: {w}")),
        )
        .collect();
    assert_eq!(
        msgs,
        [
            "spec.linkState: \"on\" is not allowed; use one of auto, enable, disable",
            "warning: spec.resourceName: resource name \"mlx.ib\" contains '.' at position 3; use letters, digits, '_' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. intel_nics); no policy can create such a resource, so pods using this network can't be scheduled",
            "warning: spec.metaPlugins: is not one or more comma-separated JSON objects: key must be a string at line 1 column 3",
        ]
    );
}

fn operator_config(name: &str, ns: &str, spec: SriovOperatorConfigSpec) -> SriovOperatorConfig {
    let mut c = SriovOperatorConfig::new(name, spec);
    c.metadata.namespace = Some(ns.into());
    c
}

#[test]
fn operator_configs() {
    let ns = "sriov-network-operator";
    let ok = operator_config(
        "default",
        ns,
        SriovOperatorConfigSpec {
            log_level: Some(2),
            configuration_mode: "systemd".into(),
            disable_plugins: vec!["mellanox".into()],
            log_config: Some(LogConfig {
                max_size_mb: Some(1024),
                max_files: Some(1),
                max_age_days: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    assert!(check_operator_config(&ok, ns).is_empty());

    let cases: Vec<(SriovOperatorConfig, Vec<&str>)> = vec![
        (
            operator_config("mine", ns, Default::default()),
            vec![
                "metadata.name: only the SriovOperatorConfig named default in namespace sriov-network-operator is used, this one is sriov-network-operator/mine; rename it",
            ],
        ),
        (
            operator_config("default", "kube-system", Default::default()),
            vec![
                "metadata.name: only the SriovOperatorConfig named default in namespace sriov-network-operator is used, this one is kube-system/default; rename it",
            ],
        ),
        (
            operator_config(
                "default",
                ns,
                SriovOperatorConfigSpec {
                    log_level: Some(3),
                    ..Default::default()
                },
            ),
            vec!["spec.logLevel: 3 is out of range; allowed: 0-2"],
        ),
        (
            operator_config(
                "default",
                ns,
                SriovOperatorConfigSpec {
                    configuration_mode: "cron".into(),
                    ..Default::default()
                },
            ),
            vec!["spec.configurationMode: \"cron\" is not allowed; use one of daemon, systemd"],
        ),
        (
            operator_config(
                "default",
                ns,
                SriovOperatorConfigSpec {
                    disable_plugins: vec!["intel".into()],
                    ..Default::default()
                },
            ),
            vec!["spec.disablePlugins[0]: \"intel\" is not allowed; use one of mellanox"],
        ),
        (
            operator_config(
                "default",
                ns,
                SriovOperatorConfigSpec {
                    log_config: Some(LogConfig {
                        max_files: Some(21),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            vec!["spec.logConfig.maxFiles: 21 is out of range; allowed: 1-20"],
        ),
    ];
    for (config, expected) in cases {
        let msgs: Vec<String> = check_operator_config(&config, ns)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(msgs, expected);
    }
}

#[test]
fn pool_configs() {
    assert_eq!(max_unavailable_nodes(None, 10), Ok(None));
    assert_eq!(
        max_unavailable_nodes(Some(&IntOrString::Int(2)), 10),
        Ok(Some(2))
    );
    assert_eq!(
        max_unavailable_nodes(Some(&IntOrString::Int(0)), 10),
        Ok(Some(0))
    );
    assert_eq!(
        max_unavailable_nodes(Some(&IntOrString::String("25%".into())), 10),
        Ok(Some(2))
    );
    assert_eq!(
        max_unavailable_nodes(Some(&IntOrString::String("100%".into())), 7),
        Ok(Some(7))
    );
    let bad = [
        (
            IntOrString::Int(-1),
            "spec.maxUnavailable: -1 is negative; use a node count (0 or more) or a percentage like \"25%\"",
        ),
        (
            IntOrString::String("2".into()),
            "spec.maxUnavailable: \"2\" is a string but not a percentage; use a number (2) or a percentage (\"25%\")",
        ),
        (
            IntOrString::String("0%".into()),
            "spec.maxUnavailable: \"0%\": the percentage must be between 1% and 100%",
        ),
        (
            IntOrString::String("101%".into()),
            "spec.maxUnavailable: \"101%\": the percentage must be between 1% and 100%",
        ),
        (
            IntOrString::String("x%".into()),
            "spec.maxUnavailable: \"x%\": the percentage must be between 1% and 100%",
        ),
    ];
    for (v, msg) in bad {
        assert_eq!(
            max_unavailable_nodes(Some(&v), 10).unwrap_err().to_string(),
            msg
        );
    }

    let ok = SriovNetworkPoolConfig::new(
        "p",
        SriovNetworkPoolConfigSpec {
            max_unavailable: Some(IntOrString::String("50%".into())),
            rdma_mode: "exclusive".into(),
            ..Default::default()
        },
    );
    assert!(check_pool_config(&ok).is_empty());
    let both = SriovNetworkPoolConfig::new(
        "p",
        SriovNetworkPoolConfigSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            ovs_hardware_offload_config: Some(OvsHardwareOffloadConfig {
                name: "worker".into(),
                ..Default::default()
            }),
            rdma_mode: "private".into(),
            ..Default::default()
        },
    );
    let msgs: Vec<String> = check_pool_config(&both)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        [
            "spec.ovsHardwareOffloadConfig: a pool config can't have both parallel drain settings (nodeSelector/maxUnavailable) and ovsHardwareOffloadConfig; use two SriovNetworkPoolConfig objects",
            "spec.rdmaMode: \"private\" is not allowed; use one of shared, exclusive",
        ]
    );
}

#[test]
fn examples_pass_rules() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples/");
    let nets: Vec<sriov_crds::SriovNetwork> = serde_saphyr::from_multiple(
        &std::fs::read_to_string(format!("{dir}sriovnetworks.yaml")).unwrap(),
    )
    .unwrap();
    for n in &nets {
        assert!(
            check_network_spec(&n.spec).is_empty(),
            "{:?}: {:?}",
            n.metadata.name,
            check_network_spec(&n.spec)
        );
    }
    let ib: sriov_crds::SriovIBNetwork = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{dir}sriovibnetwork.yaml")).unwrap(),
    )
    .unwrap();
    assert!(check_ib_network_spec(&ib.spec).is_empty());
    let cfg: SriovOperatorConfig = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{dir}sriovoperatorconfig.yaml")).unwrap(),
    )
    .unwrap();
    assert!(check_operator_config(&cfg, "sriov-network-operator").is_empty());
    let pools: Vec<SriovNetworkPoolConfig> = serde_saphyr::from_multiple(
        &std::fs::read_to_string(format!("{dir}sriovnetworkpoolconfig.yaml")).unwrap(),
    )
    .unwrap();
    for p in &pools {
        assert!(check_pool_config(p).is_empty(), "{:?}", p.metadata.name);
    }
}
