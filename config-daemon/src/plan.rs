//! The plan: per PF, the steps that take the node from what a scan found to
//! the desired `SriovNetworkNodeState` spec, and nothing else.
//!
//! - `sriov_numvfs` only when the count differs (the kernel needs 0 first;
//!   [`sriov_host::sriov::set_num_vfs`] does that).
//! - VF drivers per group: `netdevice` groups go to the VF's default kernel
//!   driver (no `driver_override`), other device types (`vfio-pci`) are bound
//!   through `driver_override`. A driver change never touches the VF count.
//! - MTU: the PF is set to the largest of the spec MTU and the groups' MTUs
//!   (so it is never below a VF's), before the VFs; netdevice VFs get their
//!   group's MTU. An MTU change never touches the VF count.
//! - externallyManaged PFs are verified (VF count and MTU are someone
//!   else's): enough VFs exist and the MTU fits, else the PF fails.
//! - PFs this daemon configured earlier (journal) that left the spec are
//!   reset: 0 VFs and their original MTU.
//! - Over netlink ([`PfLink`]), as upstream: the PF is set up when the spec
//!   gives it VFs, and VFs on a kernel driver whose admin MAC is unset get
//!   their netdev's current MAC as admin MAC (`ip link set PF vf N mac X`),
//!   so it survives a VF driver rebind (vfio-pci VFs get it before they
//!   leave their kernel driver). A PF that netlink does not show (a
//!   simulated node, no netdev) skips these steps with the reason in
//!   [`PfPlan::skipped`].
//!
//! A step is disruptive when it removes or rebinds a VF that a pod holds:
//! a device-info file of the device plugin names it, or its netdev is not in
//! the host network namespace (a kernel netdev driver is bound but sysfs
//! shows no netdev: the interface was moved into a pod).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sriov_crds::Interface;
use sriov_crds::node_policy::DEVICE_TYPE_NETDEVICE;
use sriov_crds::pf_names::VfRange;
use sriov_host::driver::DriverKind;
use sriov_host::netdev::LinkType;
use sriov_host::netlink::MacAddr;
use sriov_host::{HostRoot, Node, PciAddress, PciFunction};

use crate::discover::{PfLink, PfLinks};
use crate::journal::PfRecord;

/// Where device plugin device-info files live (device-info-spec 1.1.0).
pub const DEVICE_INFO_DIR: &str = "var/run/k8s.cni.cncf.io/devinfo/dp";

/// The DRA driver's checkpoint (`sriov-dra-driver`, its default plugins
/// dir and driver name): the claims it prepared, each VF with the binding a
/// claim's `VfConfig` replaced.
pub const DRA_CHECKPOINT: &str =
    "var/lib/kubelet/plugins/sriovnetwork.k8snetworkplumbingwg.io/checkpoint.json";

/// The VFs in use on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// VFs (PCI addresses) held by pods: named by a device-info file, moved
    /// out of the host namespace, or prepared for a DRA claim.
    pub vfs: BTreeSet<String>,
    /// VFs prepared for DRA claims, by address, with the claim
    /// (`namespace/name`). Their binding is the claim's while it holds
    /// them: a claim's `VfConfig` may have rebound them (to `vfio-pci`,
    /// say), and the DRA driver restores the binding it recorded when the
    /// claim is released. Driver steps leave them alone: not drift to
    /// repair (a VF that lost its driver under a claim is the DRA driver's
    /// health to report, not a rebind under a running pod).
    pub claimed_by_dra: BTreeMap<String, String>,
}

/// The part of the DRA driver's checkpoint read here (the file is
/// `sriov_dra_driver::prepare::Checkpoint`; unknown fields ignored).
#[derive(Debug, serde::Deserialize)]
struct DraCheckpoint {
    #[serde(default)]
    claims: BTreeMap<String, DraClaim>,
}

#[derive(Debug, serde::Deserialize)]
struct DraClaim {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    devices: Vec<DraDevice>,
}

#[derive(Debug, serde::Deserialize)]
struct DraDevice {
    address: String,
}

/// The driver a VF group wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VfDriver {
    /// The VF's default kernel driver, no `driver_override` (netdevice).
    Default,
    /// This driver, through `driver_override` (vfio-pci).
    Override(String),
}

impl VfDriver {
    /// For a group's `deviceType`.
    pub fn for_device_type(device_type: &str) -> Self {
        if device_type.is_empty() || device_type == DEVICE_TYPE_NETDEVICE {
            VfDriver::Default
        } else {
            VfDriver::Override(device_type.to_string())
        }
    }

    /// Whether a VF with this driver and override already has what is wanted.
    pub fn satisfied_by(&self, driver: Option<&str>, driver_override: Option<&str>) -> bool {
        match self {
            VfDriver::Default => {
                driver_override.is_none() && DriverKind::of(driver) == DriverKind::Kernel
            }
            VfDriver::Override(d) => driver == Some(d) && driver_override == Some(d),
        }
    }
}

impl fmt::Display for VfDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfDriver::Default => f.write_str("the default driver"),
            VfDriver::Override(d) => f.write_str(d),
        }
    }
}

/// One change on one PF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "action"
)]
pub enum Action {
    /// Write the PF netdev's MTU.
    SetPfMtu { ifname: String, from: u32, to: u32 },
    /// Change `sriov_numvfs` (0 first when both are non-zero).
    SetNumVfs { from: u32, to: u32 },
    /// Bind the VFs `first..=last` that are not on `driver` yet.
    BindVfs {
        first: u32,
        last: u32,
        driver: VfDriver,
        /// The VFs (PCI addresses) known now to need it; VFs created by an
        /// earlier step are checked when the step runs.
        vfs: Vec<String>,
    },
    /// Set the MTU of the netdevs of VFs `first..=last` that differ.
    SetVfMtu {
        first: u32,
        last: u32,
        mtu: u32,
        vfs: Vec<String>,
    },
    /// Set the PF administratively up (`ip link set PF up`).
    SetPfUp { ifname: String },
    /// Give VFs without an admin MAC their netdev's current MAC as admin
    /// MAC (`ip link set PF vf N mac X`), so it survives a driver rebind.
    SetVfAdminMacs {
        /// The PF netdev.
        ifname: String,
        first: u32,
        last: u32,
        /// The VFs (PCI addresses, or `VF i` for VFs created by an earlier
        /// step); only these are looked at when the step runs.
        vfs: Vec<String>,
        /// Wait (bounded) for the VFs' netdevs: they were just created or
        /// rebound to their kernel driver.
        wait_netdevs: bool,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetPfMtu { ifname, from, to } => {
                write!(f, "set the MTU of {ifname} from {from} to {to}")
            }
            Action::SetNumVfs { from, to } => write!(f, "set sriov_numvfs from {from} to {to}"),
            Action::BindVfs {
                first,
                last,
                driver,
                vfs,
            } => {
                write!(f, "bind VFs {first}-{last} to {driver}")?;
                if !vfs.is_empty() {
                    write!(f, " ({} to change)", vfs.len())?;
                }
                Ok(())
            }
            Action::SetVfMtu {
                first, last, mtu, ..
            } => write!(f, "set the MTU of VFs {first}-{last} to {mtu}"),
            Action::SetPfUp { ifname } => write!(f, "set {ifname} up"),
            Action::SetVfAdminMacs {
                first, last, vfs, ..
            } => write!(
                f,
                "set the admin MAC of VFs {first}-{last} to their netdev's MAC ({} to set)",
                vfs.len()
            ),
        }
    }
}

/// A step and whether it disrupts pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    /// It removes or rebinds VFs that pods hold.
    pub disruptive: bool,
    /// The VFs (PCI addresses) held by pods that the step removes or rebinds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_vfs: Vec<String>,
}

/// Why a PF is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PfReason {
    /// It is in the spec.
    Spec,
    /// It is in the spec as externallyManaged (only verified and VF drivers).
    ExternallyManaged,
    /// It left the spec; this daemon configured it before: reset.
    Reset,
}

/// The steps for one PF, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PfPlan {
    pub pci_address: String,
    pub name: String,
    pub reason: PfReason,
    pub steps: Vec<Step>,
    /// The PF cannot be configured as asked (externallyManaged check, PF
    /// missing, VF range beyond the count): the message says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its state before, for the journal (MTU, sriov_numvfs).
    #[serde(skip)]
    pub before: Option<PfRecord>,
    /// Steps not planned, and why (e.g. the PF is not visible over netlink).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl PfPlan {
    /// Any step disrupts pods.
    pub fn disruptive(&self) -> bool {
        self.steps.iter().any(|s| s.disruptive)
    }

    /// `ens1f0 (0000:3b:00.0)`.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.pci_address.clone()
        } else {
            format!("{} ({})", self.name, self.pci_address)
        }
    }
}

/// The plan for the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub pfs: Vec<PfPlan>,
}

impl Plan {
    /// Nothing to write and nothing failed.
    pub fn is_empty(&self) -> bool {
        self.pfs
            .iter()
            .all(|p| p.steps.is_empty() && p.error.is_none())
    }

    /// Any step disrupts pods.
    pub fn disruptive(&self) -> bool {
        self.pfs.iter().any(PfPlan::disruptive)
    }

    /// The plan as text, one line per step.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.is_empty() {
            out.push_str("nothing to change: the node matches the spec\n");
            return out;
        }
        for pf in &self.pfs {
            if pf.steps.is_empty() && pf.error.is_none() {
                continue;
            }
            let why = match pf.reason {
                PfReason::Spec => "",
                PfReason::ExternallyManaged => " [externally managed]",
                PfReason::Reset => " [left the spec: reset]",
            };
            out.push_str(&format!("PF {}{why}\n", pf.label()));
            if let Some(e) = &pf.error {
                out.push_str(&format!("  cannot apply: {e}\n"));
            }
            for note in &pf.skipped {
                out.push_str(&format!("  (skipped: {note})\n"));
            }
            for s in &pf.steps {
                let tag = if s.disruptive {
                    format!("DISRUPTIVE (VFs held by pods: {})", s.held_vfs.join(", "))
                } else {
                    "non-disruptive".into()
                };
                out.push_str(&format!("  - {}: {tag}\n", s.action));
            }
        }
        out
    }
}

/// VFs that pods hold: named by a device-info file, on a kernel netdev
/// driver without a netdev in the host namespace, or prepared for a DRA
/// claim ([`DRA_CHECKPOINT`], also in [`Held::claimed_by_dra`]).
pub fn held_vfs(root: &HostRoot, node: &Node) -> Held {
    let mut held = Held {
        vfs: pod_held_vfs(root, node),
        claimed_by_dra: BTreeMap::new(),
    };
    let path = root.join(DRA_CHECKPOINT);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<DraCheckpoint>(&bytes) {
            Ok(c) => {
                for claim in c.claims.values() {
                    for d in &claim.devices {
                        held.vfs.insert(d.address.clone());
                        held.claimed_by_dra.insert(
                            d.address.clone(),
                            format!("{}/{}", claim.namespace, claim.name),
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the DRA driver's checkpoint is unreadable; its claims' VFs are not known")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the DRA driver's checkpoint is unreadable; its claims' VFs are not known")
        }
    }
    held
}

/// VFs that pods of the device plugin hold: named by a device-info file,
/// or on a kernel netdev driver without a netdev in the host namespace.
fn pod_held_vfs(root: &HostRoot, node: &Node) -> BTreeSet<String> {
    let mut held = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(root.join(DEVICE_INFO_DIR)) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pci) = name
                .strip_suffix("-device.json")
                .and_then(|s| s.rsplit_once('-'))
                .map(|(_, pci)| pci)
                && PciAddress::parse(pci).is_some()
            {
                held.insert(pci.to_string());
            }
        }
    }
    for vf in node.vfs() {
        let kernel = DriverKind::of(vf.driver.as_deref()) == DriverKind::Kernel;
        if vf.is_network() && kernel && vf.netdevs.is_empty() && vf_had_netdev_driver(vf) {
            held.insert(vf.address.to_string());
        }
    }
    held
}

/// Drivers that always create a netdev for a VF they bind: a VF on one of
/// them without a netdev has had its netdev moved to another namespace.
fn vf_had_netdev_driver(vf: &PciFunction) -> bool {
    is_netdev_driver(vf.driver.as_deref())
}

/// Whether `driver` is a VF driver that always creates a netdev.
pub fn is_netdev_driver(driver: Option<&str>) -> bool {
    matches!(
        driver,
        Some(
            "iavf"
                | "igbvf"
                | "ixgbevf"
                | "i40evf"
                | "mlx5_core"
                | "mlx4_core"
                | "bnxt_en"
                | "qede"
                | "ice"
        )
    )
}

fn vfs_in<'a>(node: &'a Node, pf: &PciAddress) -> BTreeMap<u32, &'a PciFunction> {
    node.vfs_of(pf)
        .into_iter()
        .filter_map(|v| v.vf.map(|i| (i.index, v)))
        .collect()
}

fn pf_mtu(pf: &PciFunction) -> Option<(String, u32)> {
    let nd = pf.primary_netdev()?;
    Some((nd.name.clone(), nd.mtu?))
}

fn held_in<'a>(held: &Held, vfs: impl Iterator<Item = &'a PciFunction>) -> Vec<String> {
    vfs.map(|v| v.address.to_string())
        .filter(|a| held.vfs.contains(a))
        .collect()
}

/// Plans the whole node: the spec's PFs, then the PFs to reset (those in
/// `configured` that are not in the spec). The PFs' netlink state is read
/// here, in the calling thread's network namespace, through a [`Netlink`]
/// handle ([`plan_node_given_links`] takes it as input).
///
/// [`Netlink`]: sriov_host::netlink::Netlink
pub fn plan_node(
    root: &HostRoot,
    spec: &[Interface],
    node: &Node,
    configured: &BTreeMap<String, PfRecord>,
) -> Plan {
    let links = crate::discover::pf_links_now(node, spec);
    plan_node_given_links(root, spec, node, configured, &links)
}

/// [`plan_node`] with the PFs' netlink state given.
pub fn plan_node_given_links(
    root: &HostRoot,
    spec: &[Interface],
    node: &Node,
    configured: &BTreeMap<String, PfRecord>,
    links: &PfLinks,
) -> Plan {
    let held = held_vfs(root, node);
    let mut plan = Plan::default();
    for iface in spec {
        plan.pfs.push(plan_pf_given_link(
            iface,
            node,
            &held,
            links.get(&iface.pci_address),
        ));
    }
    let in_spec: BTreeSet<&str> = spec.iter().map(|i| i.pci_address.as_str()).collect();
    for (pci, record) in configured {
        if in_spec.contains(pci.as_str()) {
            continue;
        }
        plan.pfs.push(plan_reset(pci, record, node, &held));
    }
    plan
}

fn missing(pci: &str, name: &str, reason: PfReason, why: String) -> PfPlan {
    PfPlan {
        pci_address: pci.to_string(),
        name: name.to_string(),
        reason,
        steps: Vec::new(),
        error: Some(why),
        before: None,
        skipped: Vec::new(),
    }
}

/// Plans one PF of the spec, without netlink steps (its netlink state is
/// not known: see [`plan_pf_given_link`]).
pub fn plan_pf(iface: &Interface, node: &Node, held: &Held) -> PfPlan {
    plan_pf_given_link(iface, node, held, None)
}

/// The admin MAC step of one VF group, when some VF needs it.
struct MacPlan<'a> {
    ifname: &'a str,
    vf_macs: &'a BTreeMap<u32, MacAddr>,
    recreate: bool,
    autoprobe: bool,
}

impl MacPlan<'_> {
    fn step(
        &self,
        range: &VfRange,
        driver: &VfDriver,
        vfs: &BTreeMap<u32, &PciFunction>,
        held: &Held,
    ) -> Option<Step> {
        let (list, wait_netdevs) = if self.recreate {
            // New VFs come up on their default driver with autoprobe; a
            // netdevice group binds it anyway. Without autoprobe, VFs for
            // another driver never have a kernel netdev to learn a MAC from.
            if *driver != VfDriver::Default && !self.autoprobe {
                return None;
            }
            let all = (range.start..=range.end)
                .map(|i| format!("VF {i}"))
                .collect();
            (all, true)
        } else {
            let mut wait = false;
            let mut list = Vec::new();
            for i in range.start..=range.end {
                let Some(vf) = vfs.get(&i) else { continue };
                let addr = vf.address.to_string();
                let unset = self.vf_macs.get(&i).is_some_and(MacAddr::is_zero);
                if !unset || held.vfs.contains(&addr) {
                    continue;
                }
                let on_kernel = DriverKind::of(vf.driver.as_deref()) == DriverKind::Kernel
                    && vf.primary_netdev().and_then(|n| n.mac.as_ref()).is_some();
                let stays =
                    driver.satisfied_by(vf.driver.as_deref(), vf.driver_override.as_deref());
                match driver {
                    // After the group's bind the VF has its kernel driver:
                    // its MAC now, or the netdev its rebind creates.
                    VfDriver::Default if stays && on_kernel => list.push(addr),
                    VfDriver::Default if !stays => {
                        wait = true;
                        list.push(addr);
                    }
                    // Before the group's bind moves it off its kernel driver.
                    VfDriver::Override(_) if !stays && on_kernel => list.push(addr),
                    _ => {}
                }
            }
            (list, wait)
        };
        if list.is_empty() {
            return None;
        }
        Some(Step {
            action: Action::SetVfAdminMacs {
                ifname: self.ifname.to_string(),
                first: range.start,
                last: range.end,
                vfs: list,
                wait_netdevs,
            },
            disruptive: false,
            held_vfs: Vec::new(),
        })
    }
}

/// Plans one PF of the spec; `link` is what netlink shows of it (`None`:
/// not read, no netlink steps).
pub fn plan_pf_given_link(
    iface: &Interface,
    node: &Node,
    held: &Held,
    link: Option<&PfLink>,
) -> PfPlan {
    let reason = if iface.externally_managed {
        PfReason::ExternallyManaged
    } else {
        PfReason::Spec
    };
    let Some(addr) = PciAddress::parse(&iface.pci_address) else {
        return missing(
            &iface.pci_address,
            &iface.name,
            reason,
            format!("{:?} is not a PCI address", iface.pci_address),
        );
    };
    let Some(pf) = node.get(&addr).filter(|f| f.is_pf()) else {
        return missing(
            &iface.pci_address,
            &iface.name,
            reason,
            "no such SR-IOV PF on this node (check the pciAddress, or that its driver is loaded)"
                .into(),
        );
    };
    let sriov = pf.sriov.as_ref().expect("is_pf");
    let name = pf
        .primary_netdev()
        .map(|n| n.name.clone())
        .unwrap_or_else(|| iface.name.clone());
    let mut out = PfPlan {
        pci_address: iface.pci_address.clone(),
        name,
        reason,
        steps: Vec::new(),
        error: None,
        skipped: Vec::new(),
        before: Some(PfRecord {
            name: pf
                .primary_netdev()
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            original_mtu: pf_mtu(pf).map(|(_, m)| m),
            original_num_vfs: sriov.num_vfs,
        }),
    };
    let want = iface.num_vfs.max(0) as u32;
    let have = sriov.num_vfs;
    let vfs = vfs_in(node, &addr);
    let groups: Vec<(VfRange, &sriov_crds::VfGroup)> = iface
        .vf_groups
        .iter()
        .filter_map(|g| VfRange::parse(&g.vf_range).ok().map(|r| (r, g)))
        .collect();
    if want > sriov.total_vfs {
        out.error = Some(format!(
            "numVfs {want} is more than the PF supports (sriov_totalvfs {})",
            sriov.total_vfs
        ));
        return out;
    }
    if let Some((r, g)) = groups.iter().find(|(r, _)| r.end >= want) {
        out.error = Some(format!(
            "VF group {} of policy {} covers VFs {r} but numVfs is {want}",
            g.resource_name, g.policy_name
        ));
        return out;
    }
    // MTU: the PF at least as large as every group's MTU.
    let group_mtu = groups
        .iter()
        .map(|(_, g)| g.mtu.max(0) as u32)
        .max()
        .unwrap_or(0);
    let pf_target = (iface.mtu.max(0) as u32).max(group_mtu);
    if iface.externally_managed {
        if want > have {
            out.error = Some(format!(
                "externallyManaged: the spec needs {want} VFs but the PF has {have}; create them first (echo {want} > sriov_numvfs) or lower numVfs"
            ));
            return out;
        }
        if let Some((_, m)) = pf_mtu(pf)
            && pf_target > m
        {
            out.error = Some(format!(
                "externallyManaged: the spec needs MTU {pf_target} but the PF's MTU is {m}; raise it first or lower the policy's mtu"
            ));
            return out;
        }
    } else if pf_target > 0
        && let Some((ifname, m)) = pf_mtu(pf)
        && m != pf_target
    {
        // Never below the MTU of a VF that keeps its netdev and is not set by a group.
        let in_groups = |i: u32| groups.iter().any(|(r, g)| g.mtu > 0 && r.contains(i));
        let vf_floor = if want == have {
            vfs.iter()
                .filter(|(i, _)| !in_groups(**i))
                .filter_map(|(_, v)| v.primary_netdev().and_then(|n| n.mtu))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let to = pf_target.max(vf_floor);
        if to != m {
            out.steps.push(Step {
                action: Action::SetPfMtu {
                    ifname,
                    from: m,
                    to,
                },
                disruptive: false,
                held_vfs: Vec::new(),
            });
        }
    }
    let recreate = !iface.externally_managed && want != have;
    let autoprobe = sriov.drivers_autoprobe.unwrap_or(true);
    let macs = match link {
        Some(PfLink::Visible {
            ifname,
            admin_up,
            vf_macs,
        }) => {
            if want > 0 && !admin_up {
                // First: VF drivers finish their setup with the PF up.
                out.steps.insert(
                    0,
                    Step {
                        action: Action::SetPfUp {
                            ifname: ifname.clone(),
                        },
                        disruptive: false,
                        held_vfs: Vec::new(),
                    },
                );
            }
            if pf.primary_netdev().map(|n| n.link_type) == Some(LinkType::Infiniband) {
                out.skipped
                    .push("VF admin MACs: an InfiniBand PF (VF GUIDs are not managed)".into());
                None
            } else {
                Some(MacPlan {
                    ifname,
                    vf_macs,
                    recreate,
                    autoprobe,
                })
            }
        }
        Some(PfLink::NotVisible(why)) => {
            out.skipped
                .push(format!("PF link up and VF admin MACs: {why}"));
            None
        }
        None => {
            out.skipped
                .push("PF link up and VF admin MACs: the PF's netlink state was not read".into());
            None
        }
    };
    if recreate {
        let held_vfs = held_in(held, vfs.values().copied());
        out.steps.push(Step {
            action: Action::SetNumVfs {
                from: have,
                to: want,
            },
            disruptive: !held_vfs.is_empty(),
            held_vfs,
        });
    }
    for (range, g) in &groups {
        let driver = VfDriver::for_device_type(&g.device_type);
        let mac_step = macs
            .as_ref()
            .and_then(|m| m.step(range, &driver, &vfs, held));
        let (mac_before, mac_after) = if driver == VfDriver::Default {
            (None, mac_step)
        } else {
            (mac_step, None)
        };
        out.steps.extend(mac_before);
        let (to_change, held_vfs) = if recreate {
            // New VFs come up on their default driver (with autoprobe).
            let all = driver != VfDriver::Default || !autoprobe;
            let list = if all {
                (range.start..=range.end)
                    .map(|i| format!("VF {i}"))
                    .collect()
            } else {
                Vec::new()
            };
            (list, Vec::new())
        } else {
            let changing: Vec<&PciFunction> = (range.start..=range.end)
                .filter_map(|i| vfs.get(&i).copied())
                .filter(|v| !driver.satisfied_by(v.driver.as_deref(), v.driver_override.as_deref()))
                .filter(|v| match held.claimed_by_dra.get(&v.address.to_string()) {
                    Some(claim) => {
                        out.skipped.push(format!(
                            "VF {}: on {} as DRA claim {claim} holds it (the DRA driver restores its binding when the claim is released)",
                            v.address,
                            v.driver.as_deref().unwrap_or("no driver")
                        ));
                        false
                    }
                    None => true,
                })
                .collect();
            let h = held_in(held, changing.iter().copied());
            (changing.iter().map(|v| v.address.to_string()).collect(), h)
        };
        if !to_change.is_empty() {
            out.steps.push(Step {
                action: Action::BindVfs {
                    first: range.start,
                    last: range.end,
                    driver: driver.clone(),
                    vfs: to_change,
                },
                disruptive: !held_vfs.is_empty(),
                held_vfs,
            });
        }
        if g.mtu > 0 && driver == VfDriver::Default {
            let mtu = g.mtu as u32;
            let list: Vec<String> = if recreate {
                (range.start..=range.end)
                    .map(|i| format!("VF {i}"))
                    .collect()
            } else {
                (range.start..=range.end)
                    .filter_map(|i| vfs.get(&i).copied())
                    .filter(|v| v.primary_netdev().and_then(|n| n.mtu) != Some(mtu))
                    .map(|v| v.address.to_string())
                    .collect()
            };
            if !list.is_empty() {
                out.steps.push(Step {
                    action: Action::SetVfMtu {
                        first: range.start,
                        last: range.end,
                        mtu,
                        vfs: list,
                    },
                    disruptive: false,
                    held_vfs: Vec::new(),
                });
            }
        }
        out.steps.extend(mac_after);
    }
    out
}

/// Plans the reset of a PF that left the spec: its original MTU, 0 VFs.
pub fn plan_reset(pci: &str, record: &PfRecord, node: &Node, held: &Held) -> PfPlan {
    let Some(addr) = PciAddress::parse(pci) else {
        return missing(
            pci,
            &record.name,
            PfReason::Reset,
            "not a PCI address".into(),
        );
    };
    let Some(pf) = node.get(&addr).filter(|f| f.is_pf()) else {
        // Gone from the node: nothing to reset.
        return PfPlan {
            pci_address: pci.to_string(),
            name: record.name.clone(),
            reason: PfReason::Reset,
            steps: Vec::new(),
            error: None,
            before: None,
            skipped: Vec::new(),
        };
    };
    let sriov = pf.sriov.as_ref().expect("is_pf");
    let mut steps = Vec::new();
    if sriov.num_vfs != 0 {
        let held_vfs = held_in(held, vfs_in(node, &addr).values().copied());
        steps.push(Step {
            action: Action::SetNumVfs {
                from: sriov.num_vfs,
                to: 0,
            },
            disruptive: !held_vfs.is_empty(),
            held_vfs,
        });
    }
    if let (Some((ifname, m)), Some(orig)) = (pf_mtu(pf), record.original_mtu)
        && m != orig
    {
        steps.push(Step {
            action: Action::SetPfMtu {
                ifname,
                from: m,
                to: orig,
            },
            disruptive: false,
            held_vfs: Vec::new(),
        });
    }
    PfPlan {
        pci_address: pci.to_string(),
        name: pf
            .primary_netdev()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| record.name.clone()),
        reason: PfReason::Reset,
        steps,
        error: None,
        before: None,
        skipped: Vec::new(),
    }
}
