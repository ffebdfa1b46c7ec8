//! Table tests: static rules of a SriovNetworkNodePolicy and defaulting.

use sriov_crds::nic_ids::NicIdList;
use sriov_crds::node_policy::{Bridge, ESwitchParams, OvsConfig};
use sriov_crds::rules::defaults::{Defaulted, default_policy_spec};
use sriov_crds::rules::policy::{
    NicCheck, check_policy_spec, check_resource_name, policy_warnings,
};
use sriov_crds::{SriovNetworkNicSelector, SriovNetworkNodePolicySpec};

fn base() -> SriovNetworkNodePolicySpec {
    SriovNetworkNodePolicySpec {
        resource_name: "intel_nics".into(),
        num_vfs: 8,
        nic_selector: SriovNetworkNicSelector {
            vendor: "8086".into(),
            device_id: "158b".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn messages(spec: &SriovNetworkNodePolicySpec) -> Vec<String> {
    check_policy_spec(spec, &NicIdList::builtin(), NicCheck::KnownOnly)
        .iter()
        .map(ToString::to_string)
        .chain(
            policy_warnings(spec, NicCheck::KnownOnly)
                .iter()
                .map(|w| format!("warning: {w}")),
        )
        .collect()
}

type Mutate = fn(&mut SriovNetworkNodePolicySpec);
type Case = (&'static str, Mutate);
type RejectCase = (&'static str, Mutate, &'static [&'static str]);

#[test]
fn accepted_policies() {
    let cases: &[Case] = &[
        ("base", |_| {}),
        ("priority 0", |s| s.priority = Some(0)),
        ("priority 99", |s| s.priority = Some(99)),
        ("mtu 1", |s| s.mtu = Some(1)),
        ("mtu 9000", |s| s.mtu = Some(9000)),
        ("vendor only", |s| s.nic_selector.device_id.clear()),
        ("device only", |s| s.nic_selector.vendor.clear()),
        ("upper-case hex ids", |s| {
            s.nic_selector.vendor = "15B3".into();
            s.nic_selector.device_id = "101D".into();
        }),
        ("pfNames only", |s| {
            s.nic_selector = SriovNetworkNicSelector {
                pf_names: vec!["ens1f0".into()],
                ..Default::default()
            }
        }),
        ("pfNames last index numVfs-1", |s| {
            s.nic_selector.pf_names = vec!["ens1f0#0-7".into()]
        }),
        ("pfNames single VF", |s| {
            s.nic_selector.pf_names = vec!["ens1f0#3-3".into()]
        }),
        ("rootDevices", |s| {
            s.nic_selector.root_devices = vec!["0000:86:00.0".into(), "0000:af:00.1".into()]
        }),
        ("netFilter openstack", |s| {
            s.nic_selector = SriovNetworkNicSelector {
                net_filter: "openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11".into(),
                ..Default::default()
            }
        }),
        ("netFilter aws", |s| {
            s.nic_selector = SriovNetworkNicSelector {
                net_filter: "aws/NetworkID:subnet-0abc123".into(),
                ..Default::default()
            }
        }),
        ("vfio-pci without rdma", |s| {
            s.device_type = "vfio-pci".into()
        }),
        ("netdevice with rdma", |s| {
            s.device_type = "netdevice".into();
            s.is_rdma = Some(true);
        }),
        ("switchdev eth", |s| {
            s.eswitch_mode = "switchdev".into();
            s.link_type = "ETH".into();
        }),
        ("switchdev without linkType", |s| {
            s.eswitch_mode = "switchdev".into()
        }),
        ("vdpa on switchdev netdevice", |s| {
            s.eswitch_mode = "switchdev".into();
            s.vdpa_type = "vhost".into();
        }),
        ("bridge on switchdev", |s| {
            s.eswitch_mode = "switchdev".into();
            s.bridge = Some(Bridge {
                ovs: Some(OvsConfig::default()),
            });
        }),
        ("empty bridge without switchdev", |s| {
            s.bridge = Some(Bridge::default())
        }),
        ("multiport on switchdev", |s| {
            s.eswitch_mode = "switchdev".into();
            s.eswitch_params = Some(ESwitchParams {
                multiport: Some(true),
            });
        }),
        ("IB", |s| {
            s.nic_selector.vendor = "15b3".into();
            s.nic_selector.device_id = "1021".into();
            s.link_type = "IB".into();
        }),
        ("resource name with dash", |s| {
            s.resource_name = "intel-nics_2".into()
        }),
    ];
    for (name, mutate) in cases {
        let mut spec = base();
        mutate(&mut spec);
        assert_eq!(
            messages(&spec),
            Vec::<String>::new(),
            "case {name:?} must be accepted"
        );
    }
}

#[test]
fn rejected_policies() {
    let cases: &[RejectCase] = &[
        (
            "priority 100",
            |s| s.priority = Some(100),
            &["spec.priority: 100 is out of range; allowed: 0-99"],
        ),
        (
            "priority -1",
            |s| s.priority = Some(-1),
            &["spec.priority: -1 is out of range; allowed: 0-99"],
        ),
        (
            "mtu 0",
            |s| s.mtu = Some(0),
            &["spec.mtu: 0 is out of range; allowed: >= 1"],
        ),
        (
            "numVfs 0",
            |s| s.num_vfs = 0,
            &[
                "spec.numVfs: 0 is not allowed: a policy must create at least one VF; delete the policy to remove its VFs",
            ],
        ),
        (
            "numVfs -1",
            |s| s.num_vfs = -1,
            &["spec.numVfs: -1 is negative; set the number of VFs per PF (1 or more)"],
        ),
        (
            "bad deviceType",
            |s| s.device_type = "igb_uio".into(),
            &["spec.deviceType: \"igb_uio\" is not allowed; use one of netdevice, vfio-pci"],
        ),
        (
            "bad linkType",
            |s| s.link_type = "Ethernet".into(),
            &["spec.linkType: \"Ethernet\" is not allowed; use one of eth, ETH, ib, IB"],
        ),
        (
            "bad eSwitchMode",
            |s| s.eswitch_mode = "Switchdev".into(),
            &["spec.eSwitchMode: \"Switchdev\" is not allowed; use one of legacy, switchdev"],
        ),
        (
            "bad vdpaType",
            |s| {
                s.eswitch_mode = "switchdev".into();
                s.vdpa_type = "vdpa".into();
            },
            &["spec.vdpaType: \"vdpa\" is not allowed; use one of virtio, vhost"],
        ),
        (
            "empty nicSelector",
            |s| s.nic_selector = SriovNetworkNicSelector::default(),
            &[
                "spec.nicSelector: nicSelector is empty: set at least one of vendor, deviceID, pfNames, rootDevices or netFilter",
            ],
        ),
        (
            "unknown vendor",
            |s| {
                s.nic_selector.vendor = "dead".into();
                s.nic_selector.device_id.clear();
            },
            &[
                "spec.nicSelector.vendor: vendor dead is not supported: no NIC of this vendor is in the supported NIC list; add the NIC to the supported-nic-ids list or enable dev mode",
            ],
        ),
        (
            "unknown vendor/device",
            |s| s.nic_selector.device_id = "154c".into(),
            &[
                "spec.nicSelector.deviceID: vendor/device 8086/154c is not supported: not a PF in the supported NIC list; check the PF device id (lspci -nn) or add the NIC to the supported-nic-ids list",
            ],
        ),
        (
            "unknown device",
            |s| {
                s.nic_selector.vendor.clear();
                s.nic_selector.device_id = "beef".into();
            },
            &[
                "spec.nicSelector.deviceID: device beef is not supported: not a PF device id in the supported NIC list; check the PF device id (lspci -nn) or add the NIC to the supported-nic-ids list",
            ],
        ),
        (
            "vendor not hex",
            |s| s.nic_selector.vendor = "0x8086".into(),
            &[
                "spec.nicSelector.vendor: \"0x8086\" is not a PCI vendor id; use 4 hex digits without 0x, e.g. \"8086\"",
            ],
        ),
        (
            "device not hex",
            |s| s.nic_selector.device_id = "15g8".into(),
            &[
                "spec.nicSelector.deviceID: \"15g8\" is not a PCI device id; use 4 hex digits without 0x, e.g. \"158b\"",
            ],
        ),
        (
            "range end == numVfs",
            |s| s.nic_selector.pf_names = vec!["ens1f0#4-8".into()],
            &[
                "spec.nicSelector.pfNames[0]: VF range \"ens1f0#4-8\" ends at index 8, but with numVfs 8 the VF indexes are 0-7; raise numVfs to 9 or end the range at 7",
            ],
        ),
        (
            "range reversed",
            |s| s.nic_selector.pf_names = vec!["ens1f0".into(), "ens1f1#5-2".into()],
            &[
                "spec.nicSelector.pfNames[1]: VF range in \"ens1f1#5-2\": first index 5 is above last index 2; write 2-5",
            ],
        ),
        (
            "range syntax",
            |s| s.nic_selector.pf_names = vec!["ens1f0#2:5".into()],
            &[
                "spec.nicSelector.pfNames[0]: VF range in \"ens1f0#2:5\" must be <first>-<last>, e.g. ens1f0#2-5 (a single VF is 3-3)",
            ],
        ),
        (
            "rootDevice short form",
            |s| s.nic_selector.root_devices = vec!["86:00.0".into()],
            &[
                "warning: spec.nicSelector.rootDevices[0]: \"86:00.0\" is not a PCI address; write it as the kernel does, domain:bus:device.function, e.g. 0000:86:00.0",
            ],
        ),
        (
            "rootDevice bad function",
            |s| s.nic_selector.root_devices = vec!["0000:86:00.8".into()],
            &[
                "warning: spec.nicSelector.rootDevices[0]: \"0000:86:00.8\" is not a PCI address; write it as the kernel does, domain:bus:device.function, e.g. 0000:86:00.0",
            ],
        ),
        (
            "netFilter no colon",
            |s| s.nic_selector.net_filter = "openstack".into(),
            &[
                "warning: spec.nicSelector.netFilter: netFilter \"openstack\" has no ':'; use openstack/NetworkID:<network uuid> (e.g. openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11) or aws/NetworkID:<subnet id>",
            ],
        ),
        (
            "netFilter not uuid",
            |s| s.nic_selector.net_filter = "openstack/NetworkID:1234".into(),
            &[
                "warning: spec.nicSelector.netFilter: netFilter \"openstack/NetworkID:1234\": \"1234\" is not a UUID; use openstack/NetworkID:<network uuid> (e.g. openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11) or aws/NetworkID:<subnet id>",
            ],
        ),
        (
            "netFilter unknown key",
            |s| s.nic_selector.net_filter = "gcp/NetworkID:x".into(),
            &[
                "warning: spec.nicSelector.netFilter: netFilter \"gcp/NetworkID:x\": unknown filter \"gcp/NetworkID\"; use openstack/NetworkID:<network uuid> (e.g. openstack/NetworkID:3e1a55a4-2f0c-4b1d-9c64-5e5a1f0b8a11) or aws/NetworkID:<subnet id>",
            ],
        ),
        (
            "vfio-pci with rdma",
            |s| {
                s.device_type = "vfio-pci".into();
                s.is_rdma = Some(true);
            },
            &[
                "spec.isRdma: 'deviceType: vfio-pci' conflicts with 'isRdma: true'; set deviceType to netdevice (RDMA on the host) or isRdma to false (vfio-pci in a VM)",
            ],
        ),
        (
            "switchdev with ib",
            |s| {
                s.eswitch_mode = "switchdev".into();
                s.link_type = "ib".into();
            },
            &[
                "spec.eSwitchMode: 'eSwitchMode: switchdev' can be used only with ethernet links, but linkType is \"ib\"; set linkType to eth or use eSwitchMode legacy",
            ],
        ),
        (
            "vdpa with vfio-pci on switchdev",
            |s| {
                s.eswitch_mode = "switchdev".into();
                s.device_type = "vfio-pci".into();
                s.vdpa_type = "virtio".into();
            },
            &[
                "spec.vdpaType: 'deviceType: vfio-pci' conflicts with 'vdpaType: virtio'; set deviceType to netdevice or remove vdpaType",
            ],
        ),
        (
            "vdpa without switchdev",
            |s| s.vdpa_type = "virtio".into(),
            &[
                "spec.vdpaType: vdpa requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
            ],
        ),
        (
            "bridge without switchdev",
            |s| {
                s.bridge = Some(Bridge {
                    ovs: Some(OvsConfig::default()),
                })
            },
            &[
                "spec.bridge: software bridge management requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
            ],
        ),
        (
            "bridge externally managed",
            |s| {
                s.eswitch_mode = "switchdev".into();
                s.externally_managed = Some(true);
                s.bridge = Some(Bridge {
                    ovs: Some(OvsConfig::default()),
                });
            },
            &[
                "spec.bridge: software bridge management can't be used when the device is externally managed; remove bridge or externallyManaged",
            ],
        ),
        (
            "multiport legacy",
            |s| {
                s.eswitch_params = Some(ESwitchParams {
                    multiport: Some(true),
                })
            },
            &[
                "spec.eSwitchParams.multiport: multiport requires the device to be configured in switchdev mode; set 'eSwitchMode: switchdev'",
            ],
        ),
        (
            "bad resource name",
            |s| s.resource_name = "intel.nics".into(),
            &[
                "spec.resourceName: resource name \"intel.nics\" contains '.' at position 5; use letters, digits, '_' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. intel_nics)",
            ],
        ),
        (
            "several at once",
            |s| {
                s.priority = Some(120);
                s.device_type = "vfio-pci".into();
                s.is_rdma = Some(true);
            },
            &[
                "spec.priority: 120 is out of range; allowed: 0-99",
                "spec.isRdma: 'deviceType: vfio-pci' conflicts with 'isRdma: true'; set deviceType to netdevice (RDMA on the host) or isRdma to false (vfio-pci in a VM)",
            ],
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut spec = base();
        mutate(&mut spec);
        assert_eq!(messages(&spec), *expected, "case {name:?}");
    }
}

#[test]
fn dev_mode_accepts_unknown_nics() {
    let mut spec = base();
    spec.nic_selector.vendor = "dead".into();
    spec.nic_selector.device_id = "beef".into();
    assert!(check_policy_spec(&spec, &NicIdList::builtin(), NicCheck::AnyNic).is_empty());
    assert_eq!(
        check_policy_spec(&spec, &NicIdList::builtin(), NicCheck::KnownOnly).len(),
        1
    );
}

#[test]
fn resource_names() {
    for ok in [
        "a",
        "A9",
        "intel_nics",
        "intel-nics",
        "x1_y-2z",
        &"a".repeat(63),
    ] {
        assert_eq!(check_resource_name("f", ok), Ok(()), "{ok}");
    }
    let rule = "use letters, digits, '_' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. intel_nics)";
    let cases = [
        ("", format!("f: resource name is empty; {rule}")),
        (
            "_intel",
            format!(
                "f: resource name \"_intel\" must start and end with a letter or digit; {rule}"
            ),
        ),
        (
            "intel-",
            format!(
                "f: resource name \"intel-\" must start and end with a letter or digit; {rule}"
            ),
        ),
        (
            "intel/nics",
            format!("f: resource name \"intel/nics\" contains '/' at position 5; {rule}"),
        ),
        (
            "in tel",
            format!("f: resource name \"in tel\" contains ' ' at position 2; {rule}"),
        ),
    ];
    for (name, msg) in cases {
        assert_eq!(check_resource_name("f", name).unwrap_err().to_string(), msg);
    }
    let long = "a".repeat(64);
    assert_eq!(
        check_resource_name("f", &long).unwrap_err().to_string(),
        format!("f: resource name \"{long}\" is 64 characters long; {rule}")
    );
}

#[test]
fn defaulting() {
    let mut spec = base();
    assert_eq!(
        default_policy_spec(&mut spec),
        [
            Defaulted::Priority,
            Defaulted::DeviceType,
            Defaulted::IsRdmaFalse
        ]
    );
    assert_eq!(
        (spec.priority, spec.device_type.as_str(), spec.is_rdma),
        (Some(99), "netdevice", Some(false))
    );
    assert!(default_policy_spec(&mut spec).is_empty(), "idempotent");

    let mut spec = base();
    spec.priority = Some(0);
    spec.device_type = "vfio-pci".into();
    spec.is_rdma = Some(false);
    assert!(
        default_policy_spec(&mut spec).is_empty(),
        "explicit values are kept"
    );
    assert_eq!(spec.priority, Some(0));

    let mut ib = base();
    ib.link_type = "ib".into();
    assert_eq!(
        default_policy_spec(&mut ib),
        [
            Defaulted::Priority,
            Defaulted::DeviceType,
            Defaulted::IsRdmaTrueForInfiniBand
        ]
    );
    assert_eq!(ib.is_rdma, Some(true));
    assert_eq!(Defaulted::IsRdmaTrueForInfiniBand.path(), "/spec/isRdma");

    let mut ib_false = base();
    ib_false.link_type = "IB".into();
    ib_false.is_rdma = Some(false);
    assert_eq!(
        default_policy_spec(&mut ib_false),
        [
            Defaulted::Priority,
            Defaulted::DeviceType,
            Defaulted::IsRdmaTrueForInfiniBand
        ]
    );
    assert_eq!(
        ib_false.is_rdma,
        Some(true),
        "IB netdevice always gets RDMA, like upstream"
    );

    let mut ib_vfio = base();
    ib_vfio.link_type = "IB".into();
    ib_vfio.device_type = "vfio-pci".into();
    assert_eq!(
        default_policy_spec(&mut ib_vfio),
        [Defaulted::Priority, Defaulted::IsRdmaFalse]
    );
}

#[test]
fn examples_pass_static_rules() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/sriovnetworknodepolicies.yaml"
    ))
    .unwrap();
    let policies: Vec<sriov_crds::SriovNetworkNodePolicy> =
        serde_saphyr::from_multiple(&text).unwrap();
    for p in &policies {
        assert_eq!(
            messages(&p.spec),
            Vec::<String>::new(),
            "{:?}",
            p.metadata.name
        );
    }
}
