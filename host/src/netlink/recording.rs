//! [`RecordingLinkOps`]: an in-memory [`LinkOps`] for unit tests of code
//! that drives netlink (the CNI plugin, the config daemon).
//!
//! It holds links (with their namespace) and per-VF state like the kernel
//! would, records every call, and fails chosen calls with a chosen errno.
//! Views for other namespaces ([`LinkOps::in_netns`]) share the same state
//! and call log.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;

use super::{
    Link, LinkId, LinkOps, MacAddr, MoveLink, NetlinkError, Op, Result, VfInfo, VfSetting,
    validate_ifname, validate_vf, vf_op,
};
use crate::netns::{Netns, NetnsId};

/// One call on a [`RecordingLinkOps`] (or one of its namespace views).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// [`LinkOps::link`].
    Link(LinkId),
    /// [`LinkOps::links`].
    Links,
    /// [`LinkOps::vfs`] (also the lookup behind [`LinkOps::vf`]).
    Vfs(LinkId),
    /// [`LinkOps::set_netns`].
    SetNetns {
        /// The link.
        link: LinkId,
        /// Path of the target namespace.
        netns: PathBuf,
    },
    /// [`LinkOps::rename`].
    Rename {
        /// The link.
        link: LinkId,
        /// The new name.
        to: String,
    },
    /// [`LinkOps::set_mac`].
    SetMac {
        /// The link.
        link: LinkId,
        /// The MAC.
        mac: MacAddr,
    },
    /// [`LinkOps::set_mtu`].
    SetMtu {
        /// The link.
        link: LinkId,
        /// The MTU.
        mtu: u32,
    },
    /// [`LinkOps::set_up`].
    SetUp {
        /// The link.
        link: LinkId,
        /// Up or down.
        up: bool,
    },
    /// [`LinkOps::set_vf`] and the `set_vf_*` shorthands.
    SetVf {
        /// The PF.
        pf: LinkId,
        /// The VF index.
        vf: u32,
        /// The settings, in order.
        settings: Vec<VfSetting>,
    },
    /// [`LinkOps::in_netns`].
    InNetns(PathBuf),
    /// [`LinkOps::move_link`].
    MoveLink {
        /// The link's ifindex.
        index: u32,
        /// Path of the target namespace.
        netns: PathBuf,
        /// The name in the target.
        name: String,
        /// The MAC set, if any.
        mac: Option<MacAddr>,
        /// The MTU set, if any.
        mtu: Option<u32>,
        /// Up in the target.
        up: bool,
    },
    /// [`LinkOps::del_alt_name`].
    DelAltName {
        /// The link.
        dev: String,
        /// The altname.
        alt: String,
    },
}

/// A recorded call with the namespace view it was made on (`None` = the
/// fake's own namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Namespace path of the view, `None` for the root view.
    pub netns: Option<PathBuf>,
    /// The call.
    pub call: Call,
}

type Pred = Box<dyn Fn(&Call) -> bool + Send + Sync>;

/// A configured failure: calls matching a predicate fail with an errno
/// (as [`NetlinkError::Kernel`]), a number of times or always.
pub struct Failure {
    pred: Pred,
    errno: Errno,
    remaining: Option<usize>,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("errno", &self.errno)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl Failure {
    /// Fails every call for which `pred` is true with `errno`.
    pub fn when(errno: Errno, pred: impl Fn(&Call) -> bool + Send + Sync + 'static) -> Failure {
        Failure {
            pred: Box::new(pred),
            errno,
            remaining: None,
        }
    }

    /// Fails only the first `n` matching calls.
    pub fn times(mut self, n: usize) -> Failure {
        self.remaining = Some(n);
        self
    }

    /// Fails every `set_vf` that contains a setting for which `pred` is
    /// true, e.g. `Failure::vf_setting(Errno::EOPNOTSUPP, |s|
    /// matches!(s, VfSetting::LinkState(_)))` for a driver like igb.
    pub fn vf_setting(
        errno: Errno,
        pred: impl Fn(&VfSetting) -> bool + Send + Sync + 'static,
    ) -> Failure {
        Failure::when(errno, move |c| match c {
            Call::SetVf { settings, .. } => settings.iter().any(&pred),
            _ => false,
        })
    }
}

/// A link held by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLink {
    /// The link as [`LinkOps::link`] reports it.
    pub link: Link,
    /// Namespace identity (`None` = the fake's own namespace).
    pub netns_id: Option<NetnsId>,
    /// Namespace path (`None` = the fake's own namespace).
    pub netns: Option<PathBuf>,
    /// VFs when the link is a PF.
    pub vfs: Vec<VfInfo>,
}

#[derive(Debug, Default)]
struct State {
    /// The namespace the fake's own view stands for
    /// ([`RecordingLinkOps::with_home`]): a move to it or a view of it is
    /// the fake's own view, not another namespace.
    home: Option<NetnsId>,
    links: Vec<FakeLink>,
    next_index: u32,
    calls: Vec<Recorded>,
    failures: Vec<Failure>,
    /// PFs whose driver keeps VF spoof checking and trust but does not
    /// report them ([`RecordingLinkOps::hide_vf_flags`]).
    hidden_vf_flags: Vec<String>,
}

/// The recording fake. Clones share state.
#[derive(Debug, Clone)]
pub struct RecordingLinkOps {
    state: Arc<Mutex<State>>,
    netns_id: Option<NetnsId>,
    netns: Option<PathBuf>,
}

impl Default for RecordingLinkOps {
    fn default() -> Self {
        RecordingLinkOps::new()
    }
}

impl RecordingLinkOps {
    /// An empty fake with only `lo` (ifindex 1).
    pub fn new() -> RecordingLinkOps {
        let fake = RecordingLinkOps {
            state: Arc::new(Mutex::new(State {
                next_index: 1,
                ..Default::default()
            })),
            netns_id: None,
            netns: None,
        };
        let lo = fake.add_link("lo", None);
        fake.lock().links[0].link.mtu = 65536;
        debug_assert_eq!(lo, 1);
        fake
    }

    /// The fake's own view stands for `home`: moving a link to `home`
    /// brings it back to this view (as a CNI DEL moves a VF back to the
    /// host namespace it holds open). [`new`](Self::new) treats every
    /// namespace handed to it as another one.
    pub fn with_home(self, home: &Netns) -> RecordingLinkOps {
        self.lock().home = Some(home.id());
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fake's id for `netns`: `None` for its home namespace.
    fn target(st: &State, netns: &Netns) -> Option<NetnsId> {
        let id = netns.id();
        (st.home != Some(id)).then_some(id)
    }

    /// Adds a down link with MTU 1500 in this view's namespace; returns its
    /// ifindex.
    pub fn add_link(&self, name: &str, mac: Option<MacAddr>) -> u32 {
        let mut st = self.lock();
        let index = st.next_index;
        st.next_index += 1;
        st.links.push(FakeLink {
            link: Link {
                index,
                name: name.to_owned(),
                mac,
                mtu: 1500,
                admin_up: false,
                lower_up: false,
                num_vfs: None,
                kind: None,
                alt_names: Vec::new(),
            },
            netns_id: self.netns_id,
            netns: self.netns.clone(),
            vfs: Vec::new(),
        });
        index
    }

    /// Adds a PF with `num_vfs` VFs in their fresh state
    /// ([`VfInfo::fresh`]); returns its ifindex.
    pub fn add_pf(&self, name: &str, mac: MacAddr, num_vfs: u32) -> u32 {
        let index = self.add_link(name, Some(mac));
        let mut st = self.lock();
        let l = st
            .links
            .iter_mut()
            .find(|l| l.link.index == index)
            .expect("just added");
        l.link.num_vfs = Some(num_vfs);
        l.vfs = (0..num_vfs).map(VfInfo::fresh).collect();
        index
    }

    /// Makes `pf` behave like a driver whose `ndo_get_vf_config` leaves
    /// spoof checking and trust unset: [`LinkOps::vfs`] reports them as
    /// unknown (`None`), while `set_vf` still stores them (see
    /// [`vf_state`](Self::vf_state) for what is stored).
    pub fn hide_vf_flags(&self, pf: &str) {
        self.lock().hidden_vf_flags.push(pf.to_owned());
    }

    /// Gives the link with ifindex `index` (in any namespace) the
    /// alternative name `alt`, as `ip link property add dev DEV altname
    /// ALT` (or udev's `AlternativeNamesPolicy`) would.
    pub fn add_alt_name(&self, index: u32, alt: &str) {
        let mut st = self.lock();
        let l = st
            .links
            .iter_mut()
            .find(|l| l.link.index == index)
            .unwrap_or_else(|| panic!("no link {index} to give an altname"));
        l.link.alt_names.push(alt.to_owned());
    }

    /// Adds a failure rule (checked in the order added).
    pub fn fail(&self, failure: Failure) {
        self.lock().failures.push(failure);
    }

    /// Removes all failure rules.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Every call so far, on every view, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.iter().map(|r| r.call.clone()).collect()
    }

    /// Every call with the namespace view it was made on.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().calls.clone()
    }

    /// Only the calls that change something (no lookups), in order.
    pub fn changes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| {
                !matches!(
                    c,
                    Call::Link(_) | Call::Links | Call::Vfs(_) | Call::InNetns(_)
                )
            })
            .collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// All links in all namespaces, without recording a call.
    pub fn all_links(&self) -> Vec<FakeLink> {
        self.lock().links.clone()
    }

    /// A link by name in any namespace, without recording a call.
    pub fn find(&self, name: &str) -> Option<FakeLink> {
        self.lock()
            .links
            .iter()
            .find(|l| l.link.name == name)
            .cloned()
    }

    /// The state of VF `vf` of PF `pf` (any namespace), without recording.
    pub fn vf_state(&self, pf: &str, vf: u32) -> Option<VfInfo> {
        self.find(pf)?.vfs.into_iter().find(|v| v.index == vf)
    }

    /// Records `call`, applies failure rules, and returns the lock.
    fn begin(
        &self,
        call: Call,
        op: &Op,
        link: &LinkId,
        vf: Option<u32>,
    ) -> Result<MutexGuard<'_, State>> {
        let mut st = self.lock();
        st.calls.push(Recorded {
            netns: self.netns.clone(),
            call: call.clone(),
        });
        let mut hit = None;
        for f in st.failures.iter_mut() {
            if f.remaining != Some(0) && (f.pred)(&call) {
                if let Some(n) = f.remaining.as_mut() {
                    *n -= 1;
                }
                hit = Some(f.errno);
                break;
            }
        }
        if let Some(errno) = hit {
            return Err(NetlinkError::Kernel {
                op: op.clone(),
                link: link.to_string(),
                vf,
                errno,
            });
        }
        Ok(st)
    }

    fn position(&self, st: &State, id: &LinkId, op: &Op) -> Result<usize> {
        st.links
            .iter()
            .position(|l| {
                l.netns_id == self.netns_id
                    && match id {
                        LinkId::Name(n) => &l.link.name == n,
                        LinkId::Index(i) => l.link.index == *i,
                    }
            })
            .ok_or_else(|| NetlinkError::NotFound {
                op: op.clone(),
                link: id.to_string(),
                netns: self
                    .netns
                    .as_ref()
                    .map(|p| format!("network namespace {}", p.display()))
                    .unwrap_or_else(|| "the current network namespace".into()),
            })
    }

    fn kernel(op: &Op, id: &LinkId, vf: Option<u32>, errno: Errno) -> NetlinkError {
        NetlinkError::Kernel {
            op: op.clone(),
            link: id.to_string(),
            vf,
            errno,
        }
    }
}

impl LinkOps for RecordingLinkOps {
    fn link(&self, id: LinkId) -> Result<Link> {
        let op = Op::GetLink;
        let st = self.begin(Call::Link(id.clone()), &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        Ok(st.links[i].link.clone())
    }

    fn links(&self) -> Result<Vec<Link>> {
        let any = LinkId::Name("(all)".into());
        let st = self.begin(Call::Links, &Op::ListLinks, &any, None)?;
        let mut v: Vec<Link> = st
            .links
            .iter()
            .filter(|l| l.netns_id == self.netns_id)
            .map(|l| l.link.clone())
            .collect();
        v.sort_by_key(|l| l.index);
        Ok(v)
    }

    fn vfs(&self, pf: LinkId) -> Result<Vec<VfInfo>> {
        let op = Op::GetVfs;
        let st = self.begin(Call::Vfs(pf.clone()), &op, &pf, None)?;
        let i = self.position(&st, &pf, &op)?;
        let mut vfs = st.links[i].vfs.clone();
        if st.hidden_vf_flags.contains(&st.links[i].link.name) {
            for v in &mut vfs {
                (v.spoofchk, v.trust) = (None, None);
            }
        }
        Ok(vfs)
    }

    fn set_netns(&self, id: LinkId, netns: &Netns) -> Result<()> {
        let op = Op::SetNetns {
            netns: netns.path().to_path_buf(),
        };
        let call = Call::SetNetns {
            link: id.clone(),
            netns: netns.path().to_path_buf(),
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        let target = Self::target(&st, netns);
        if st.links[i].netns_id == target {
            // The kernel treats a move to the same namespace as a no-op.
            return Ok(());
        }
        let name = st.links[i].link.name.clone();
        if st
            .links
            .iter()
            .any(|l| l.netns_id == target && l.link.name == name)
        {
            return Err(Self::kernel(&op, &id, None, Errno::EEXIST));
        }
        let l = &mut st.links[i];
        l.netns_id = target;
        l.netns = target.map(|_| netns.path().to_path_buf());
        // The kernel closes a device when it changes namespace.
        l.link.admin_up = false;
        l.link.lower_up = false;
        Ok(())
    }

    fn rename(&self, id: LinkId, new_name: &str) -> Result<()> {
        let op = Op::Rename {
            to: new_name.to_owned(),
        };
        validate_ifname(&op, &id, new_name)?;
        let call = Call::Rename {
            link: id.clone(),
            to: new_name.to_owned(),
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        if st.links[i].link.name == new_name {
            return Ok(());
        }
        let ns = st.links[i].netns_id;
        if st
            .links
            .iter()
            .any(|l| l.netns_id == ns && l.link.name == new_name)
        {
            return Err(Self::kernel(&op, &id, None, Errno::EEXIST));
        }
        st.links[i].link.name = new_name.to_owned();
        Ok(())
    }

    fn set_mac(&self, id: LinkId, mac: MacAddr) -> Result<()> {
        let op = Op::SetMac;
        let call = Call::SetMac {
            link: id.clone(),
            mac,
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        if mac.0[0] & 1 == 1 || mac.is_zero() {
            return Err(Self::kernel(&op, &id, None, Errno::EADDRNOTAVAIL));
        }
        st.links[i].link.mac = Some(mac);
        Ok(())
    }

    fn set_mtu(&self, id: LinkId, mtu: u32) -> Result<()> {
        let op = Op::SetMtu(mtu);
        let call = Call::SetMtu {
            link: id.clone(),
            mtu,
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        if !(68..=65535).contains(&mtu) {
            return Err(Self::kernel(&op, &id, None, Errno::EINVAL));
        }
        st.links[i].link.mtu = mtu;
        Ok(())
    }

    fn set_up(&self, id: LinkId, up: bool) -> Result<()> {
        let op = Op::SetUp(up);
        let call = Call::SetUp {
            link: id.clone(),
            up,
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        st.links[i].link.admin_up = up;
        st.links[i].link.lower_up = up;
        Ok(())
    }

    fn set_vf(&self, pf: LinkId, vf: u32, settings: &[VfSetting]) -> Result<()> {
        validate_vf(&pf, vf, settings)?;
        let op = vf_op(vf, settings);
        let call = Call::SetVf {
            pf: pf.clone(),
            vf,
            settings: settings.to_vec(),
        };
        let mut st = self.begin(call, &op, &pf, Some(vf))?;
        let i = self.position(&st, &pf, &op)?;
        let l = &mut st.links[i];
        let Some(rec) = l.vfs.iter_mut().find(|v| v.index == vf) else {
            // What drivers answer for a VF index beyond sriov_numvfs.
            return Err(Self::kernel(&op, &pf, Some(vf), Errno::EINVAL));
        };
        for s in settings {
            rec.apply(s);
        }
        Ok(())
    }

    fn in_netns(&self, netns: &Netns) -> Result<Arc<dyn LinkOps>> {
        let mut st = self.lock();
        st.calls.push(Recorded {
            netns: self.netns.clone(),
            call: Call::InNetns(netns.path().to_path_buf()),
        });
        let target = Self::target(&st, netns);
        Ok(Arc::new(RecordingLinkOps {
            state: self.state.clone(),
            netns_id: target,
            netns: target.map(|_| netns.path().to_path_buf()),
        }))
    }

    fn move_link(&self, req: &MoveLink<'_>) -> Result<()> {
        let op = Op::SetNetns {
            netns: req.to.path().to_path_buf(),
        };
        let id = LinkId::Index(req.index);
        validate_ifname(&op, &id, req.name)?;
        let call = Call::MoveLink {
            index: req.index,
            netns: req.to.path().to_path_buf(),
            name: req.name.to_owned(),
            mac: req.mac,
            mtu: req.mtu,
            up: req.up,
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        let target = Self::target(&st, req.to);
        // As the kernel (`do_setlink`, `__dev_change_net_namespace`): the
        // link moves under its own name when that is free in the target,
        // and only then is renamed, so a taken new name is EEXIST with the
        // link already moved. When its own name is taken there, the new
        // name is used for the move itself, or nothing happens.
        let taken = |st: &State, name: &str| {
            st.links.iter().enumerate().any(|(j, l)| {
                j != i
                    && l.netns_id == target
                    && (l.link.name == name || l.link.alt_names.iter().any(|a| a == name))
            })
        };
        let new_taken = taken(&st, req.name);
        if new_taken {
            if !taken(&st, &st.links[i].link.name.clone()) {
                let l = &mut st.links[i];
                l.netns_id = target;
                l.netns = target.map(|_| req.to.path().to_path_buf());
                l.link.admin_up = false;
                l.link.lower_up = false;
            }
            return Err(Self::kernel(&op, &id, None, Errno::EEXIST));
        }
        if let Some(mac) = req.mac
            && (mac.0[0] & 1 == 1 || mac.is_zero())
        {
            return Err(Self::kernel(&op, &id, None, Errno::EADDRNOTAVAIL));
        }
        if let Some(mtu) = req.mtu
            && !(68..=65535).contains(&mtu)
        {
            return Err(Self::kernel(&op, &id, None, Errno::EINVAL));
        }
        let l = &mut st.links[i];
        l.netns_id = target;
        l.netns = target.map(|_| req.to.path().to_path_buf());
        l.link.name = req.name.to_owned();
        if let Some(mac) = req.mac {
            l.link.mac = Some(mac);
        }
        if let Some(mtu) = req.mtu {
            l.link.mtu = mtu;
        }
        l.link.admin_up = req.up;
        l.link.lower_up = req.up;
        Ok(())
    }

    fn del_alt_name(&self, dev: &str, alt: &str) -> Result<bool> {
        let op = Op::DelAltName {
            alt: alt.to_owned(),
        };
        let id = LinkId::from(dev);
        let call = Call::DelAltName {
            dev: dev.to_owned(),
            alt: alt.to_owned(),
        };
        let mut st = self.begin(call, &op, &id, None)?;
        let i = self.position(&st, &id, &op)?;
        let names = &mut st.links[i].link.alt_names;
        // As the kernel: ENOENT (reported as `false`) when it has no such
        // altname.
        let had = names.iter().any(|n| n == alt);
        names.retain(|n| n != alt);
        Ok(had)
    }
}
