//! The plugin's commands: ADD, DEL, CHECK, STATUS, GC.
//!
//! [`Plugin`] takes the host's [`LinkOps`] as a trait object so unit tests
//! can run the VF-setting logic against `RecordingLinkOps`; the binary uses
//! the real `Netlink`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use serde_json::Value;
use sriov_host::HostRoot;
use sriov_host::netlink::{LinkId, LinkOps, MoveLink, NetlinkError, VfSetting};
use sriov_host::netns::Netns;

use crate::config::NetConf;
use crate::device::{self, Mode, Vf};
use crate::device_info;
use crate::env::CniEnv;
use crate::error::{CniError, Code, Result};
use crate::ipam;
use crate::result::{CniResult, Interface};
use crate::state::{Extras, OrigVfState, Saved, StateDir, netns_alive};
use crate::test_hooks::checkpoint;
use crate::vf_settings;

/// The plugin: the host root, netlink in the host namespace, and the host
/// namespace itself (to move VFs back).
#[derive(Debug)]
pub struct Plugin {
    /// Where sysfs is read.
    pub root: HostRoot,
    /// Netlink in the host network namespace.
    pub host: Arc<dyn LinkOps>,
    /// The host network namespace.
    pub host_ns: Netns,
}

fn nl(msg: impl Into<String>, e: &NetlinkError) -> CniError {
    CniError::netlink(msg, e)
}

fn is_gone(e: &NetlinkError) -> bool {
    matches!(e, NetlinkError::NotFound { .. }) || e.errno() == Some(nix::errno::Errno::ENODEV)
}

/// How far ADD got, for its undo.
#[derive(Debug, Default)]
struct AddProgress {
    /// The VF netdev is in the pod as the attachment's interface.
    moved: bool,
    /// The IPAM plugin gave an address.
    ipam_done: bool,
}

fn open_pod_netns(path: &Path) -> Result<Netns> {
    Netns::open(path).map_err(|e| {
        CniError::new(
            Code::UnknownContainer,
            format!(
                "cannot open the container's network namespace {}",
                path.display()
            ),
            e.to_string(),
        )
    })
}

/// The PF-side settings a saved attachment changed: those its config
/// names, whatever their values (as the Go plugin's `ResetVFConfig`), so a
/// cached config never fails to parse here.
fn applied_settings(s: &Saved) -> Vec<VfSetting> {
    let vf = crate::config::cached_vf_settings(&s.config);
    let (pf_known, mac_on_pf) = match &s.extras {
        Some(x) => (x.pf_state_known, x.pf_mac_set),
        None => (true, s.mac.is_some()),
    };
    if !pf_known {
        return Vec::new();
    }
    vf_settings::wanted(&vf, if mac_on_pf { s.mac } else { None })
}

/// The `ipam.type` of a saved config (keys matched as Go does).
fn cached_ipam(config: &Value) -> Option<String> {
    let ipam = config
        .as_object()?
        .iter()
        .find_map(|(k, v)| (k == "ipam" || k.eq_ignore_ascii_case("ipam")).then_some(v))?;
    ipam.as_object()?
        .iter()
        .find_map(|(k, v)| k.eq_ignore_ascii_case("type").then_some(v))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .map(str::to_owned)
}

impl Plugin {
    /// A plugin on the real host: `SRIOV_HOST_ROOT`, netlink in the calling
    /// thread's namespace.
    pub fn open(host: Arc<dyn LinkOps>) -> Result<Plugin> {
        Ok(Plugin {
            root: HostRoot::from_env(),
            host,
            host_ns: Netns::current().map_err(|e| {
                CniError::new(
                    Code::Netns,
                    "cannot open the host network namespace",
                    e.to_string(),
                )
            })?,
        })
    }

    /// ADD.
    pub fn add(&self, env: &CniEnv, conf: &NetConf, stdin: &[u8]) -> Result<CniResult> {
        let dev_info_path = conf.device_info_file.as_deref();
        let dev_info = match dev_info_path.map(|p| device_info::read(&self.root, p)) {
            None => None,
            Some(Ok(i)) => i,
            // The deviceID is all this plugin needs from the file.
            Some(Err(e)) if conf.device_id.is_some() => {
                tracing::warn!("{e}; ignoring it");
                None
            }
            Some(Err(e)) => return Err(e),
        };
        let pci = match (conf.device_id, &dev_info) {
            (Some(p), _) => p,
            (None, Some(i)) => i.pci_address().ok_or_else(|| {
                CniError::config(format!(
                    "deviceID is missing and the device-info file {} names no PCI address",
                    dev_info_path.unwrap_or(Path::new("")).display()
                ))
            })?,
            (None, None) => {
                return Err(CniError::config(
                    "deviceID is missing: set it in the config or runtimeConfig (Multus passes the device plugin's allocation), or pass a device-info file (runtimeConfig.CNIDeviceInfoFile)",
                ));
            }
        };
        if let Some(other) = dev_info.as_ref().and_then(|i| i.pci_address())
            && other != pci
        {
            tracing::warn!(
                "device-info file {} names {other}, the config's deviceID is {pci}; using {pci}",
                dev_info_path.unwrap_or(Path::new("")).display()
            );
        }
        // The file this attachment will create (none when Multus already
        // copied the device plugin's there).
        let own_dev_info = dev_info_path.filter(|_| dev_info.is_none());
        let vf = device::resolve(&self.root, &pci)?;
        tracing::debug!(?vf, "resolved");
        let netns_path = env.netns.clone().unwrap_or_default();
        let pod = open_pod_netns(&netns_path)?;
        if let Some(i) = &conf.ipam {
            ipam::find_plugin(&i.kind, &env.path)?;
        }
        let states = StateDir::new(&conf.data_dir);
        let _lock = states.lock(&pci)?;
        let (cid, ifname) = (env.container_id(), env.ifname());
        if let Some(existing) = states.load(cid, ifname)? {
            return Err(CniError::new(
                Code::VfInUse,
                format!(
                    "attachment {cid}/{ifname} already exists (VF {})",
                    existing.pci
                ),
                format!(
                    "state file {} exists; DEL the attachment first",
                    states.state_path(cid, ifname).display()
                ),
            ));
        }
        if let Some(owner) = states.allocation(&pci)? {
            if netns_alive(&owner) {
                return Err(CniError::new(
                    Code::VfInUse,
                    format!("VF {pci} is already allocated"),
                    format!(
                        "{} names network namespace {owner}, which still exists",
                        states.alloc_path(&pci).display()
                    ),
                ));
            }
            tracing::info!(%pci, owner, "stale allocation record (its netns is gone); taking the VF");
        }

        // Current state of the VF, before any change.
        let mut orig = OrigVfState::default();
        let host_link = match vf.mode {
            Mode::Netdev => Some(self.host_netdev(&vf)?),
            Mode::Userspace => None,
        };
        if let Some(l) = &host_link {
            orig.host_ifname = l.name.clone();
            orig.effective_mac = l.mac.map(|m| m.to_string()).unwrap_or_default();
            orig.mtu = Some(l.mtu);
        }
        let wanted_pf = vf_settings::wanted(&conf.vf, conf.mac);
        // The PF's VF info is read only when ADD will change a PF-side
        // setting: DEL restores only what ADD changed, so with nothing to
        // change there is nothing to save, and the dump (every VF of the PF,
        // with statistics: a firmware query per VF on some drivers) is
        // skipped. The Go plugin's DEL likewise restores only what its
        // config set.
        let pf_state = if wanted_pf.is_empty() {
            Ok(None)
        } else if vf.pf_name.is_empty() {
            Err(CniError::new(
                Code::Netlink,
                format!("PF {} of VF {pci} has no netdev", vf.pf_pci),
                "VF settings are made through the PF's netdev; bind the PF to its driver",
            ))
        } else {
            self.host
                .vf(LinkId::from(&vf.pf_name), vf.index)
                .map(Some)
                .map_err(|e| {
                    nl(
                        format!("cannot read VF {} state from PF {}", vf.index, vf.pf_name),
                        &e,
                    )
                })
        };
        let pf_state_known = match pf_state {
            Ok(Some(info)) => {
                orig.set_pf_side(&info);
                true
            }
            Ok(None) => false,
            Err(e) => {
                if !conf.vf.is_empty() || (vf.mode == Mode::Userspace && conf.mac.is_some()) {
                    return Err(e);
                }
                tracing::warn!(
                    "{e}; continuing without PF-side state (no PF-side setting is configured)"
                );
                false
            }
        };
        let saved = Saved {
            config: conf.raw.clone(),
            pci,
            pf_name: vf.pf_name.clone(),
            vf_index: vf.index,
            userspace: vf.mode == Mode::Userspace,
            mac: conf.mac,
            cont_ifname: ifname.to_owned(),
            orig,
            extras: Some(Extras {
                version: 1,
                netns: netns_path.display().to_string(),
                pf_state_known,
                pf_mac_set: pf_state_known && conf.mac.is_some(),
                dev_info_file: own_dev_info
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            }),
        };
        tracing::debug!("read VF state");
        states.save(cid, ifname, &saved)?;
        if let Err(e) = states.allocate(&pci, &netns_path.display().to_string()) {
            let _ = states.remove(cid, ifname);
            return Err(e);
        }

        let mut done = AddProgress::default();
        let res = self.add_steps(
            env,
            conf,
            stdin,
            &vf,
            &saved,
            &pod,
            &wanted_pf,
            host_link.as_ref(),
            &mut done,
        );
        match res {
            Ok(r) => {
                if let Some(p) = own_dev_info {
                    // Multus reads it into the pod's network-status; a
                    // failure here does not undo a working attachment.
                    let info = device_info::DeviceInfo::for_vf(&pci, &vf.pf_pci);
                    if let Err(e) = device_info::write(&self.root, p, &info) {
                        tracing::warn!("{e}; the pod's network-status will lack device-info");
                    }
                }
                Ok(r)
            }
            Err(e) => {
                tracing::warn!("ADD failed, undoing: {e}");
                // Before the move the pod is not looked at: a link there
                // named like ours is someone else's.
                let undo = self.teardown(
                    env,
                    stdin,
                    &saved,
                    done.moved.then_some(&pod),
                    done.ipam_done,
                    conf.ipam.as_ref().map(|i| i.kind.as_str()),
                );
                match undo {
                    Ok(()) => {
                        let _ = states.remove(cid, ifname);
                        let _ = states.release(&pci);
                        Err(e)
                    }
                    Err(u) => Err(CniError::new(
                        e.code,
                        e.msg,
                        format!(
                            "{}; undo failed too ({u}); the saved state is kept, DEL will restore the VF",
                            e.details
                        ),
                    )),
                }
            }
        }
    }

    /// ADD's answer when the move into the pod failed with EEXIST: the pod
    /// has a link named `ifname` (or the VF's own name is taken there). The
    /// kernel moves before it renames, so the VF may now be in the pod
    /// under its host name: it is moved back home first, found by its
    /// ifindex and that name (a pod link that merely shares the name is
    /// left alone), and up again if it was.
    fn name_taken_in_pod(
        &self,
        pod: &Netns,
        ifname: &str,
        host_link: &sriov_host::netlink::Link,
    ) -> CniError {
        let (host_name, host_index) = (host_link.name.as_str(), host_link.index);
        let taken = CniError::new(
            Code::Netlink,
            format!(
                "interface {ifname} already exists in {}",
                pod.path().display()
            ),
            "EEXIST: pick another CNI_IFNAME or remove that interface",
        );
        let pod_ops = match self.host.in_netns(pod) {
            Ok(o) => o,
            Err(e) => {
                let details = format!("{}; {e}", taken.details);
                return CniError { details, ..taken };
            }
        };
        match pod_ops.link(LinkId::Index(host_index)) {
            Ok(l) if l.name == host_name => {
                let back = MoveLink {
                    index: l.index,
                    to: &self.host_ns,
                    name: host_name,
                    mac: None,
                    mtu: None,
                    up: host_link.admin_up,
                };
                match pod_ops.move_link(&back) {
                    Ok(()) => {
                        tracing::info!(
                            "{host_name} moved back to the host after EEXIST in the pod"
                        );
                        taken
                    }
                    Err(e) => {
                        let details = format!(
                            "{}; the kernel moved VF netdev {host_name} into the pod before refusing the name, and moving it back failed: {e}",
                            taken.details
                        );
                        CniError { details, ..taken }
                    }
                }
            }
            _ => taken,
        }
    }

    /// The VF's netdev in the host namespace.
    fn host_netdev(&self, vf: &Vf) -> Result<sriov_host::netlink::Link> {
        for name in &vf.netdevs {
            match self.host.link(LinkId::from(name)) {
                Ok(l) => return Ok(l),
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(nl(format!("cannot read link {name}"), &e)),
            }
        }
        Err(CniError::new(
            Code::VfNetdevMissing,
            format!(
                "VF {} has no network interface in the host network namespace",
                vf.pci
            ),
            format!(
                "sysfs shows {:?}; the VF is probably in another pod's network namespace, or its driver has no netdev",
                vf.netdevs
            ),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn add_steps(
        &self,
        env: &CniEnv,
        conf: &NetConf,
        stdin: &[u8],
        vf: &Vf,
        saved: &Saved,
        pod: &Netns,
        wanted_pf: &[VfSetting],
        host_link: Option<&sriov_host::netlink::Link>,
        done: &mut AddProgress,
    ) -> Result<CniResult> {
        checkpoint("state")?;
        let pf_known = saved.extras.as_ref().is_some_and(|x| x.pf_state_known);
        if pf_known {
            vf_settings::apply(
                self.host.as_ref(),
                &vf.pf_name,
                vf.index,
                wanted_pf,
                &saved.orig,
            )?;
        }
        checkpoint("vf-settings")?;
        let ifname = env.ifname();
        let mut iface = Interface {
            name: ifname.to_owned(),
            sandbox: pod.path().display().to_string(),
            pci_id: vf.pci.to_string(),
            ..Default::default()
        };
        if vf.mode == Mode::Netdev
            && let Some(host_link) = host_link
        {
            let host_name = &saved.orig.host_ifname;
            let host_index = host_link.index;
            // One request: moved, renamed, MAC and MTU set (MoveLink). The
            // pod is not asked first whether `ifname` is free: the kernel
            // answers EEXIST, handled below.
            let req = MoveLink {
                index: host_index,
                to: pod,
                name: ifname,
                mac: conf.mac,
                mtu: conf.mtu,
                // With IPAM the link comes up after its addresses are set,
                // so the kernel announces them.
                up: conf.ipam.is_none(),
            };
            if let Err(e) = self.host.move_link(&req) {
                if e.errno() == Some(Errno::EEXIST) {
                    return Err(self.name_taken_in_pod(pod, ifname, host_link));
                }
                return Err(CniError::new(
                    if e.errno().is_none() {
                        Code::Netns
                    } else {
                        Code::Netlink
                    },
                    format!("cannot move VF netdev {host_name} into the pod as {ifname}"),
                    e.to_string(),
                ));
            }
            done.moved = true;
            tracing::debug!("moved into the pod");
            // As the Go plugin: the VF's host name must not stay behind as
            // an altname (it would make DEL's rename back fail, EEXIST).
            // Altnames move with the link and the kernel adds none on a
            // move or rename, so only a VF that had altnames (udev's
            // `AlternativeNamesPolicy`) can carry one; the others need no
            // request in the pod.
            if !host_link.alt_names.is_empty() {
                let removed = self
                    .host
                    .in_netns(pod)
                    .and_then(|pod_ops| pod_ops.del_alt_name(ifname, host_name));
                match removed {
                    Ok(true) => tracing::info!("removed altname {host_name} from {ifname}"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            checkpoint("move")?;
            // The request set the MAC and MTU (when configured) and the
            // kernel acknowledged it; a move changes neither otherwise.
            iface.mac = conf
                .mac
                .or(host_link.mac)
                .map(|m| m.to_string())
                .unwrap_or_default();
            iface.mtu = Some(conf.mtu.unwrap_or(host_link.mtu));
            checkpoint("link")?;
        } else {
            // Userspace (DPDK) mode, reported as the Go plugin does: the
            // pod's sandbox, the configured MAC or else the VF's admin MAC
            // on the PF when one is set, and the PF's MTU.
            let pf = (!vf.pf_name.is_empty()).then(|| LinkId::from(&vf.pf_name));
            let admin_mac = if pf_known {
                saved.orig.admin_mac()
            } else {
                pf.clone()
                    .and_then(|pf| self.host.vf(pf, vf.index).ok())
                    .map(|i| i.mac)
            };
            iface.mac = conf
                .mac
                .or(admin_mac.filter(|m| !m.is_zero()))
                .map(|m| m.to_string())
                .unwrap_or_default();
            iface.mtu = pf.and_then(|pf| self.host.link(pf).ok()).map(|l| l.mtu);
        }

        let mut result = CniResult {
            interfaces: vec![iface],
            ..Default::default()
        };
        if let Some(i) = &conf.ipam {
            let r = ipam::add(&i.kind, env, stdin)?;
            tracing::debug!("IPAM done");
            done.ipam_done = true;
            checkpoint("ipam")?;
            result.ips = r.ips;
            for ip in &mut result.ips {
                ip.interface = Some(0);
            }
            result.routes = r.routes;
            result.dns = r.dns;
            if vf.mode == Mode::Netdev {
                crate::addressing::configure(pod, ifname, &result)?;
            }
            tracing::debug!("addresses configured");
            checkpoint("addresses")?;
        }
        Ok(result)
    }

    /// Returns the VF and PF-side settings to how `s` saved them, and
    /// releases IPAM when `ipam` names a plugin and `ipam_done`.
    fn teardown(
        &self,
        env: &CniEnv,
        stdin: &[u8],
        s: &Saved,
        pod: Option<&Netns>,
        ipam_done: bool,
        ipam: Option<&str>,
    ) -> Result<()> {
        let mut first_err: Option<CniError> = None;
        if ipam_done
            && let Some(kind) = ipam
            && let Err(e) = ipam::run(
                kind,
                ipam::Step::Del,
                env,
                env.container_id(),
                env.ifname(),
                stdin,
            )
        {
            first_err.get_or_insert(e);
        }
        if !s.userspace
            && let Err(e) = self.return_netdev(s, pod)
        {
            first_err.get_or_insert(e);
        }
        tracing::debug!("netdev returned");
        if !s.pf_name.is_empty() {
            let applied = applied_settings(s);
            if let Err(e) = vf_settings::restore(
                self.host.as_ref(),
                &s.pf_name,
                s.vf_index,
                &applied,
                &s.orig,
            ) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Moves the VF netdev back to the host with its original name, MAC and
    /// MTU, wherever it is: in the pod, or already back in the host (under
    /// any name sysfs shows for the VF). A VF that is nowhere (destroyed
    /// with its namespace) is not an error.
    fn return_netdev(&self, s: &Saved, pod: Option<&Netns>) -> Result<()> {
        let host_name = s.orig.host_ifname.as_str();
        let cont = s.cont_ifname.as_str();
        if let Some(pod) = pod {
            let pod_ops = self
                .host
                .in_netns(pod)
                .map_err(|e| nl("cannot open netlink in the pod's netns", &e))?;
            match pod_ops.link(LinkId::from(cont)) {
                Ok(l) => {
                    let mac = s
                        .orig
                        .effective_mac()
                        .filter(|m| !m.is_zero() && l.mac != Some(*m));
                    let mtu = s.orig.mtu.filter(|m| *m != l.mtu);
                    let req = MoveLink {
                        index: l.index,
                        to: &self.host_ns,
                        name: host_name,
                        mac,
                        mtu,
                        up: false,
                    };
                    pod_ops.move_link(&req).map_err(|e| {
                        CniError::new(
                            Code::Netlink,
                            format!("cannot move {cont} back to the host as {host_name}"),
                            format!(
                                "{e}; the VF stays in the pod; free the name {host_name} on the host and retry DEL"
                            ),
                        )
                    })?;
                    // The one request named it and restored MAC and MTU:
                    // nothing left to look up.
                    return Ok(());
                }
                Err(e) if is_gone(&e) => {
                    tracing::info!(
                        cont,
                        "not in the pod's netns; looking for the VF in the host"
                    );
                }
                Err(e) => return Err(nl(format!("cannot read {cont} in the pod"), &e)),
            }
        }
        // In the host now (or it never left, or the kernel returned it).
        let mut found = None;
        let mut names = sriov_host::netdev::names_of(&self.root, &s.pci);
        if !names.iter().any(|n| n == host_name) {
            names.insert(0, host_name.to_owned());
        }
        for name in &names {
            match self.host.link(LinkId::from(name)) {
                Ok(l) => {
                    // Only trust the saved host name when sysfs lists it for
                    // this VF or it was just moved back.
                    found = Some(l);
                    break;
                }
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(nl(format!("cannot read link {name}"), &e)),
            }
        }
        let Some(link) = found else {
            tracing::info!(pci = %s.pci, "VF netdev not found in the host (destroyed with its namespace, or VF removed); nothing to move back");
            return Ok(());
        };
        let id = LinkId::Index(link.index);
        if link.name != host_name {
            self.host
                .set_up(id.clone(), false)
                .map_err(|e| nl(format!("cannot set {} down", link.name), &e))?;
            self.host.rename(id.clone(), host_name).map_err(|e| {
                nl(
                    format!("cannot rename {} back to {host_name}", link.name),
                    &e,
                )
            })?;
        }
        if let Some(mac) = s.orig.effective_mac()
            && link.mac != Some(mac)
            && !mac.is_zero()
        {
            self.host
                .set_mac(id.clone(), mac)
                .map_err(|e| nl(format!("cannot restore MAC {mac} of {host_name}"), &e))?;
        }
        if let Some(mtu) = s.orig.mtu
            && link.mtu != mtu
        {
            self.host
                .set_mtu(id, mtu)
                .map_err(|e| nl(format!("cannot restore MTU {mtu} of {host_name}"), &e))?;
        }
        Ok(())
    }

    /// DEL: idempotent; restores the VF when its allocation is still this
    /// attachment's, releases IPAM, removes the state.
    pub fn del(&self, env: &CniEnv, conf: &NetConf, stdin: &[u8]) -> Result<()> {
        let states = StateDir::new(&conf.data_dir);
        let (cid, ifname) = (env.container_id(), env.ifname());
        let Some(first) = states.load(cid, ifname)? else {
            tracing::info!(cid, ifname, "no saved state: nothing to restore");
            // The Go plugin returns here. Releasing the address too (an ADD
            // that crashed before saving its state may hold one) is best
            // effort: DEL does not fail on it.
            if let Some(i) = &conf.ipam
                && let Err(e) = ipam::run(&i.kind, ipam::Step::Del, env, cid, ifname, stdin)
            {
                tracing::warn!("IPAM DEL without saved state failed (ignored): {e}");
            }
            return Ok(());
        };
        let _lock = states.lock(&first.pci)?;
        let Some(s) = states.load(cid, ifname)? else {
            return Ok(()); // removed while we waited (a concurrent DEL or GC)
        };
        self.release(env, Some(stdin), conf, &states, &s)
    }

    /// Restores and forgets one attachment (DEL and GC); the VF lock is held.
    fn release(
        &self,
        env: &CniEnv,
        stdin: Option<&[u8]>,
        conf: &NetConf,
        states: &StateDir,
        s: &Saved,
    ) -> Result<()> {
        let (cid, ifname) = (env.container_id(), env.ifname());
        let ours = s
            .extras
            .as_ref()
            .map(|x| x.netns.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| env.netns.as_ref().map(|p| p.display().to_string()));
        let owner = states.allocation(&s.pci)?;
        let owned = match (&owner, &ours) {
            (None, _) => true,
            (Some(a), Some(o)) => a == o,
            (Some(a), None) => !netns_alive(a),
        };
        let pod = ours
            .as_deref()
            .filter(|p| netns_alive(p))
            .and_then(|p| Netns::open(p).ok());
        let saved_bytes;
        let ipam_stdin: &[u8] = match (stdin, conf.ipam.is_some()) {
            (Some(b), true) => b,
            _ => {
                saved_bytes = serde_json::to_vec(&s.config).unwrap_or_default();
                &saved_bytes
            }
        };
        // The IPAM plugin the attachment used is the saved config's (as the
        // Go plugin's DEL); it gets DEL's config when that has an ipam
        // section, else the saved one.
        let ipam_kind = cached_ipam(&s.config);
        if owned {
            self.teardown(
                env,
                ipam_stdin,
                s,
                pod.as_ref(),
                ipam_kind.is_some(),
                ipam_kind.as_deref(),
            )?;
        } else {
            tracing::warn!(
                pci = %s.pci,
                owner = owner.as_deref().unwrap_or_default(),
                "the VF now belongs to another attachment; leaving it alone"
            );
            if let Some(kind) = &ipam_kind {
                ipam::run(kind, ipam::Step::Del, env, cid, ifname, ipam_stdin)?;
            }
        }
        if let Some(p) = s
            .extras
            .as_ref()
            .map(|x| x.dev_info_file.as_str())
            .filter(|p| !p.is_empty())
        {
            device_info::remove(&self.root, Path::new(p))?;
        }
        states.remove(cid, ifname)?;
        if owned {
            states.release(&s.pci)?;
        }
        Ok(())
    }

    /// CHECK: the interface is in the pod with the configured MAC and MTU,
    /// up, with the prevResult's addresses, and the PF shows the configured
    /// VF settings.
    pub fn check(&self, env: &CniEnv, conf: &NetConf, stdin: &[u8]) -> Result<()> {
        let states = StateDir::new(&conf.data_dir);
        let (cid, ifname) = (env.container_id(), env.ifname());
        let s = states.load(cid, ifname)?.ok_or_else(|| {
            CniError::new(
                Code::UnknownContainer,
                format!("no attachment {cid}/{ifname}"),
                format!(
                    "{} does not exist",
                    states.state_path(cid, ifname).display()
                ),
            )
        })?;
        let fail = |what: String| CniError::new(Code::CheckFailed, what, "");
        let netns_path = env.netns.clone().unwrap_or_default();
        let pod = open_pod_netns(&netns_path)?;
        if !s.userspace {
            let pod_ops = self
                .host
                .in_netns(&pod)
                .map_err(|e| nl("cannot open netlink in the pod's netns", &e))?;
            let link = pod_ops
                .link(LinkId::from(ifname))
                .map_err(|e| fail(format!("interface {ifname} is not in the pod: {e}")))?;
            if let Some(mac) = conf.mac
                && link.mac != Some(mac)
            {
                return Err(fail(format!(
                    "{ifname} has MAC {}, expected {mac}",
                    link.mac.map(|m| m.to_string()).unwrap_or_default()
                )));
            }
            if let Some(mtu) = conf.mtu
                && link.mtu != mtu
            {
                return Err(fail(format!(
                    "{ifname} has MTU {}, expected {mtu}",
                    link.mtu
                )));
            }
            if !link.admin_up {
                return Err(fail(format!("{ifname} is down")));
            }
            if let Some(prev) = &conf.prev_result {
                let prev = CniResult::parse(prev.to_string().as_bytes(), "prevResult")?;
                let have = crate::addressing::addresses(&pod, ifname)?;
                for ip in &prev.ips {
                    if !have.contains(&(ip.address, ip.prefix)) {
                        return Err(fail(format!(
                            "{ifname} lacks address {}/{} from prevResult",
                            ip.address, ip.prefix
                        )));
                    }
                }
            }
        }
        if s.extras.as_ref().is_none_or(|x| x.pf_state_known) && !s.pf_name.is_empty() {
            let info = self
                .host
                .vf(LinkId::from(&s.pf_name), s.vf_index)
                .map_err(|e| {
                    nl(
                        format!("cannot read VF {} of PF {}", s.vf_index, s.pf_name),
                        &e,
                    )
                })?;
            for w in vf_settings::wanted(&conf.vf, if s.userspace { conf.mac } else { None }) {
                let mut expect = info.clone();
                expect.apply(&w);
                if expect != info {
                    return Err(fail(format!(
                        "VF {} on PF {}: {} is not {}",
                        s.vf_index,
                        s.pf_name,
                        w.what(),
                        w.ip_args()
                    )));
                }
            }
        }
        if let Some(i) = &conf.ipam {
            ipam::run(&i.kind, ipam::Step::Check, env, cid, ifname, stdin)?;
        }
        Ok(())
    }

    /// GC: restores and forgets attachments of this network that are not in
    /// `cni.dev/valid-attachments`, releasing their IPAM allocations.
    pub fn gc(&self, env: &CniEnv, conf: &NetConf, stdin: &[u8]) -> Result<()> {
        let valid = conf.valid_attachments.clone().unwrap_or_default();
        let states = StateDir::new(&conf.data_dir);
        let mut first_err = None;
        for (name, path) in states.list()? {
            let s = match states.load_path(&path) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("GC: skipping {}: {e}", path.display());
                    continue;
                }
            };
            if s.config.get("name").and_then(Value::as_str) != Some(conf.name.as_str()) {
                continue;
            }
            let mut s = s;
            if s.cont_ifname.is_empty() {
                // A Go v2.8+ cache has no ContIFNames: the file is
                // `<containerID>-<ifname>`, and runtimes' container IDs
                // have no '-'.
                match name.split_once('-') {
                    Some((_, ifname)) => s.cont_ifname = ifname.to_owned(),
                    None => continue,
                }
            }
            let Some(cid) = name.strip_suffix(&format!("-{}", s.cont_ifname)) else {
                continue;
            };
            if valid
                .iter()
                .any(|a| a.container_id == cid && a.ifname == s.cont_ifname)
            {
                continue;
            }
            tracing::info!(cid, ifname = %s.cont_ifname, "GC: releasing stale attachment");
            let att_env = CniEnv {
                container_id: Some(cid.to_owned()),
                ifname: Some(s.cont_ifname.clone()),
                netns: s
                    .extras
                    .as_ref()
                    .map(|x| PathBuf::from(&x.netns))
                    .filter(|p| !p.as_os_str().is_empty()),
                ..env.clone()
            };
            let r =
                states
                    .lock(&s.pci)
                    .and_then(|_lock| match states.load(cid, &s.cont_ifname)? {
                        Some(s) => self.release(
                            &att_env,
                            None,
                            &NetConf {
                                ipam: None,
                                ..conf.clone()
                            },
                            &states,
                            &s,
                        ),
                        None => Ok(()),
                    });
            if let Err(e) = r {
                tracing::warn!("GC of {cid}/{}: {e}", s.cont_ifname);
                first_err.get_or_insert(e);
            }
        }
        if let Some(i) = &conf.ipam
            && conf.cni_version == "1.1.0"
            && ipam::supports_version(&i.kind, env, "1.1.0")
            && let Err(e) = ipam::run(&i.kind, ipam::Step::Gc, env, "", "", stdin)
        {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// STATUS: the state directory is writable and the IPAM plugin exists
/// (and says it is ready, when it knows STATUS).
pub fn status(env: &CniEnv, conf: &NetConf, stdin: &[u8]) -> Result<()> {
    StateDir::new(&conf.data_dir)
        .check_writable()
        .map_err(|e| {
            CniError::new(
                Code::NotAvailable,
                "the state directory is not writable",
                e.to_string(),
            )
        })?;
    if let Some(i) = &conf.ipam {
        ipam::find_plugin(&i.kind, &env.path)
            .map_err(|e| CniError::new(Code::NotAvailable, e.msg, e.details))?;
        if ipam::supports_version(&i.kind, env, "1.1.0") {
            ipam::run(&i.kind, ipam::Step::Status, env, "", "", stdin)
                .map_err(|e| CniError::new(Code::NotAvailable, e.msg, e.details))?;
        } else {
            tracing::debug!(
                "IPAM plugin {} predates STATUS (no 1.1.0 support); not asked",
                i.kind
            );
        }
    }
    Ok(())
}
