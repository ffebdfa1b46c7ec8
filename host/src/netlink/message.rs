//! Route netlink request messages, built the way iproute2 builds them, and
//! decoding of `RTM_NEWLINK` replies into [`Link`] and [`VfInfo`].
//!
//! Every set request is an `RTM_NEWLINK` with `NLM_F_REQUEST | NLM_F_ACK`
//! and an `ifinfomsg` carrying only the ifindex, like `ip link set`. VF
//! settings go in `IFLA_VFINFO_LIST { IFLA_VF_INFO { … } }` in the order
//! given; a VLAN is `IFLA_VF_VLAN` when its protocol is 802.1Q and
//! `IFLA_VF_VLAN_LIST { IFLA_VF_VLAN_INFO }` otherwise (iproute2 6.1).

use std::os::fd::RawFd;

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    self as rl, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, Prop,
    VfVlan as RlVfVlan, VlanProtocol,
};

use super::link::{Link, LinkId, MacAddr};
use super::vf::{VfInfo, VfLinkState, VfSetting, VfVlan, VlanProto};

/// Route netlink message type, as sent and received.
pub type RouteMessage = NetlinkMessage<RouteNetlinkMessage>;

fn request(msg: RouteNetlinkMessage, flags: u16) -> RouteMessage {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    m.finalize();
    m
}

fn set_link(index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut lm = LinkMessage::default();
    lm.header.index = index;
    lm.attributes = attributes;
    lm
}

fn newlink(lm: LinkMessage) -> RouteMessage {
    request(RouteNetlinkMessage::NewLink(lm), NLM_F_REQUEST | NLM_F_ACK)
}

/// The `IFLA_VF_INFO` entries for `settings` of VF `vf`, in the order
/// given except that the rate comes last: iproute2 collects
/// `min_tx_rate`/`max_tx_rate` while parsing and emits `IFLA_VF_RATE` after
/// all other VF attributes.
pub fn vf_attributes(vf: u32, settings: &[VfSetting]) -> Vec<rl::VfInfo> {
    let is_rate = |s: &&VfSetting| matches!(s, VfSetting::Rate { .. });
    settings
        .iter()
        .filter(|s| !is_rate(s))
        .chain(settings.iter().filter(is_rate))
        .map(|s| match *s {
            VfSetting::Mac(m) => rl::VfInfo::Mac(rl::VfInfoMac::new(vf, &m.0)),
            VfSetting::Vlan(v) if v.proto == VlanProto::Dot1Q => {
                rl::VfInfo::Vlan(rl::VfInfoVlan::new(vf, u32::from(v.vlan), u32::from(v.qos)))
            }
            VfSetting::Vlan(v) | VfSetting::VlanList(v) => {
                rl::VfInfo::VlanList(vec![RlVfVlan::Info(rl::VfVlanInfo::new(
                    vf,
                    u32::from(v.vlan),
                    u32::from(v.qos),
                    match v.proto {
                        VlanProto::Dot1Q => VlanProtocol::Ieee8021Q,
                        VlanProto::Dot1Ad => VlanProtocol::Ieee8021Ad,
                    },
                ))])
            }
            VfSetting::SpoofCheck(on) => rl::VfInfo::SpoofCheck(rl::VfInfoSpoofCheck::new(vf, on)),
            VfSetting::Trust(on) => rl::VfInfo::Trust(rl::VfInfoTrust::new(vf, on)),
            VfSetting::LinkState(st) => rl::VfInfo::LinkState(rl::VfInfoLinkState::new(
                vf,
                match st {
                    VfLinkState::Auto => rl::VfLinkState::Auto,
                    VfLinkState::Enable => rl::VfLinkState::Enable,
                    VfLinkState::Disable => rl::VfLinkState::Disable,
                },
            )),
            VfSetting::Rate { min_mbps, max_mbps } => {
                rl::VfInfo::Rate(rl::VfInfoRate::new(vf, min_mbps, max_mbps))
            }
        })
        .collect()
}

/// `ip link set <ifindex> vf VF <settings…>`.
pub fn set_vf(ifindex: u32, vf: u32, settings: &[VfSetting]) -> RouteMessage {
    let info = rl::LinkVfInfo(vf_attributes(vf, settings));
    newlink(set_link(
        ifindex,
        vec![LinkAttribute::VfInfoList(vec![info])],
    ))
}

/// `ip link set <ifindex> netns FD`.
pub fn set_netns_fd(ifindex: u32, fd: RawFd) -> RouteMessage {
    newlink(set_link(ifindex, vec![LinkAttribute::NetNsFd(fd)]))
}

/// `ip link set <ifindex> name NAME`.
pub fn rename(ifindex: u32, name: &str) -> RouteMessage {
    newlink(set_link(
        ifindex,
        vec![LinkAttribute::IfName(name.to_owned())],
    ))
}

/// `ip link set <ifindex> address MAC`.
pub fn set_mac(ifindex: u32, mac: MacAddr) -> RouteMessage {
    newlink(set_link(
        ifindex,
        vec![LinkAttribute::Address(mac.0.to_vec())],
    ))
}

/// `ip link set <ifindex> mtu MTU`.
pub fn set_mtu(ifindex: u32, mtu: u32) -> RouteMessage {
    newlink(set_link(ifindex, vec![LinkAttribute::Mtu(mtu)]))
}

/// `ip link set <ifindex> up|down`.
pub fn set_up(ifindex: u32, up: bool) -> RouteMessage {
    let mut lm = set_link(ifindex, vec![]);
    lm.header.change_mask = LinkFlags::Up;
    if up {
        lm.header.flags = LinkFlags::Up;
    }
    newlink(lm)
}

/// A move into the namespace `fd` with everything the target needs in one
/// `RTM_NEWLINK`: `ip link set <ifindex> netns FD name NAME [address MAC]
/// [mtu MTU] up|down`. The kernel moves the link first, then sets address
/// and MTU, renames it in the target and changes the flags last.
pub fn move_link(
    ifindex: u32,
    fd: RawFd,
    name: &str,
    mac: Option<MacAddr>,
    mtu: Option<u32>,
    up: bool,
) -> RouteMessage {
    let mut attributes = vec![
        LinkAttribute::NetNsFd(fd),
        LinkAttribute::IfName(name.to_owned()),
    ];
    if let Some(m) = mac {
        attributes.push(LinkAttribute::Address(m.0.to_vec()));
    }
    if let Some(mtu) = mtu {
        attributes.push(LinkAttribute::Mtu(mtu));
    }
    let mut lm = set_link(ifindex, attributes);
    lm.header.change_mask = LinkFlags::Up;
    if up {
        lm.header.flags = LinkFlags::Up;
    }
    newlink(lm)
}

/// `ip link property del dev DEV altname ALT`: `RTM_DELLINKPROP` with
/// `IFLA_PROP_LIST { IFLA_ALT_IFNAME }`, the device named by `IFLA_IFNAME`
/// (iproute2 names it by ifindex; the kernel resolves either, and the name
/// is what is known after a move).
pub fn del_alt_name(dev: &str, alt: &str) -> RouteMessage {
    let mut lm = LinkMessage::default();
    lm.attributes.push(LinkAttribute::IfName(dev.to_owned()));
    lm.attributes
        .push(LinkAttribute::PropList(vec![Prop::AltIfName(
            alt.to_owned(),
        )]));
    request(
        RouteNetlinkMessage::DelLinkProp(lm),
        NLM_F_REQUEST | NLM_F_ACK,
    )
}

/// `RTM_DELLINK` of `ifindex`.
pub fn delete(ifindex: u32) -> RouteMessage {
    request(
        RouteNetlinkMessage::DelLink(set_link(ifindex, vec![])),
        NLM_F_REQUEST | NLM_F_ACK,
    )
}

/// `RTM_GETLINK` of one link; with `vfs`, asks for VF info without
/// statistics (`IFLA_EXT_MASK = RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS`),
/// which keeps the reply of a PF with 256 VFs under the 64 KiB receive
/// buffer (with per-VF stats it would not fit).
pub fn get_link(id: &LinkId, vfs: bool) -> RouteMessage {
    let mut lm = LinkMessage::default();
    match id {
        LinkId::Index(i) => lm.header.index = *i,
        LinkId::Name(n) => lm.attributes.push(LinkAttribute::IfName(n.clone())),
    }
    if vfs {
        lm.attributes.push(LinkAttribute::ExtMask(vec![
            LinkExtentMask::Vf,
            LinkExtentMask::SkipStats,
        ]));
    }
    request(RouteNetlinkMessage::GetLink(lm), NLM_F_REQUEST)
}

/// `RTM_GETLINK` dump of all links.
pub fn dump_links() -> RouteMessage {
    request(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
}

/// Serializes a message with sequence number and port id 0.
pub fn to_bytes(msg: &RouteMessage) -> Vec<u8> {
    let mut m = msg.clone();
    m.header.sequence_number = 0;
    m.header.port_number = 0;
    m.finalize();
    let mut buf = vec![0u8; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// Zeroes the fields that differ between two senders of the same request:
/// sequence number (bytes 8..12), port id (12..16) and, for `RTM_*LINK`
/// messages, the ifindex (20..24).
pub fn normalize(bytes: &mut [u8]) {
    for r in [8..12, 12..16] {
        if bytes.len() >= r.end {
            bytes[r].fill(0);
        }
    }
    let ty = bytes.get(4..6).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if matches!(ty, Some(16..=19)) && bytes.len() >= 24 {
        bytes[20..24].fill(0);
    }
}

/// A [`Link`] from an `RTM_NEWLINK` reply.
pub fn link_from_message(lm: &LinkMessage) -> Link {
    let mut link = Link {
        index: lm.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        admin_up: lm.header.flags.contains(LinkFlags::Up),
        lower_up: lm.header.flags.contains(LinkFlags::LowerUp),
        num_vfs: None,
        kind: None,
        alt_names: Vec::new(),
    };
    for a in &lm.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => link.mac = MacAddr::from_slice(a),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::NumVf(n) => link.num_vfs = Some(*n),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            LinkAttribute::PropList(props) => {
                for p in props {
                    if let Prop::AltIfName(n) = p {
                        link.alt_names.push(n.clone());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// The VFs from an `RTM_NEWLINK` reply that carries `IFLA_VFINFO_LIST`, in
/// VF index order.
pub fn vfs_from_message(lm: &LinkMessage) -> Vec<VfInfo> {
    let mut out = Vec::new();
    for a in &lm.attributes {
        let LinkAttribute::VfInfoList(list) = a else {
            continue;
        };
        for entry in list {
            let mut vf = VfInfo::default();
            let mut list_vlan = None;
            for attr in &entry.0 {
                match attr {
                    rl::VfInfo::Mac(m) => {
                        vf.index = m.vf_id;
                        vf.mac = MacAddr::from_slice(&m.mac).unwrap_or_default();
                    }
                    rl::VfInfo::Vlan(v) => {
                        vf.vlan.vlan = v.vlan_id as u16;
                        vf.vlan.qos = v.qos as u8;
                    }
                    rl::VfInfo::VlanList(l) => {
                        if let Some(RlVfVlan::Info(i)) = l.first() {
                            list_vlan = Some(VfVlan {
                                vlan: i.vlan_id as u16,
                                qos: i.qos as u8,
                                proto: VlanProto::from_ethertype(u16::from(i.protocol))
                                    .unwrap_or_default(),
                            });
                        }
                    }
                    rl::VfInfo::SpoofCheck(s) => vf.spoofchk = Some(s.enabled),
                    rl::VfInfo::Trust(t) => vf.trust = Some(t.enabled),
                    rl::VfInfo::LinkState(s) => {
                        vf.link_state =
                            VfLinkState::from_u32(u32::from(s.state)).unwrap_or_default()
                    }
                    rl::VfInfo::Rate(r) => {
                        vf.min_tx_rate = r.min_tx_rate;
                        vf.max_tx_rate = r.max_tx_rate;
                    }
                    rl::VfInfo::TxRate(r) if vf.max_tx_rate == 0 => vf.max_tx_rate = r.rate,
                    _ => {}
                }
            }
            if let Some(v) = list_vlan {
                vf.vlan = v;
            }
            out.push(vf);
        }
    }
    out.sort_by_key(|v| v.index);
    out
}

const IFLA_VFINFO_LIST: u16 = 22;
const IFLA_VF_INFO: u16 = 1;
const IFLA_VF_SPOOFCHK: u16 = 4;
const IFLA_VF_TRUST: u16 = 9;
/// What the kernel sends in `IFLA_VF_SPOOFCHK`/`IFLA_VF_TRUST` when the
/// driver's `ndo_get_vf_config` leaves the field alone (`-1`).
const VF_SETTING_UNREPORTED: u32 = u32::MAX;
/// Attribute type bits (without `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The attributes in `buf`: (type without flag bits, payload).
pub fn attrs(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= buf.len() {
        let len = u16::from_ne_bytes([buf[i], buf[i + 1]]) as usize;
        let ty = u16::from_ne_bytes([buf[i + 2], buf[i + 3]]) & NLA_TYPE_MASK;
        if len < 4 || i + len > buf.len() {
            return Err(format!("attribute length {len} at {i} of {}", buf.len()));
        }
        out.push((ty, &buf[i + 4..i + len]));
        i += len.next_multiple_of(4);
    }
    Ok(out)
}

/// Sets [`VfInfo::spoofchk`] and [`VfInfo::trust`] to `None` for the VFs
/// whose driver does not report them, from the raw bytes of the
/// `RTM_NEWLINK` message `vfs` were decoded from. The decoder reads the
/// kernel's "not reported" value as off, which would make a VF look
/// unprotected (or a restore on CNI DEL switch spoof checking off).
pub fn mark_unreported(vfs: &mut [VfInfo], raw: &[u8]) {
    // nlmsghdr (16 bytes), ifinfomsg (16 bytes), then the attributes.
    let Some(top) = raw.get(32..) else {
        return;
    };
    let setting = |payload: &[u8]| -> Option<(u32, u32)> {
        let vf = u32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?);
        let value = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
        Some((vf, value))
    };
    let nested = |buf| attrs(buf).unwrap_or_default();
    for (_, list) in nested(top)
        .into_iter()
        .filter(|(t, _)| *t == IFLA_VFINFO_LIST)
    {
        for (_, info) in nested(list).into_iter().filter(|(t, _)| *t == IFLA_VF_INFO) {
            for (kind, payload) in nested(info) {
                let Some((index, value)) = setting(payload) else {
                    continue;
                };
                if value != VF_SETTING_UNREPORTED {
                    continue;
                }
                let Some(vf) = vfs.iter_mut().find(|v| v.index == index) else {
                    continue;
                };
                match kind {
                    IFLA_VF_SPOOFCHK => vf.spoofchk = None,
                    IFLA_VF_TRUST => vf.trust = None,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {

    /// The request is the one iproute2 6.1 sends for `ip link property del
    /// dev net1 altname ens1f0v1` (RTM_DELLINKPROP, NLM_F_REQUEST|ACK,
    /// IFLA_PROP_LIST { IFLA_ALT_IFNAME }; bytes read with strace), except
    /// that the device is named by IFLA_IFNAME instead of its ifindex.
    #[test]
    fn del_alt_name_is_iproutes_request() {
        let mut got = to_bytes(&del_alt_name("net1", "ens1f0v1"));
        normalize(&mut got);
        let expect: Vec<u8> = vec![
            0x40, 0, 0, 0, // length 64
            0x6d, 0, // RTM_DELLINKPROP (109)
            0x05, 0, // NLM_F_REQUEST | NLM_F_ACK
            0, 0, 0, 0, 0, 0, 0, 0, // seq, port
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg
            0x09, 0, 0x03, 0, b'n', b'e', b't', b'1', 0, 0, 0, 0, // IFLA_IFNAME
            0x14, 0, 0x34, 0x80, // IFLA_PROP_LIST | NLA_F_NESTED
            0x0d, 0, 0x35, 0, b'e', b'n', b's', b'1', b'f', b'0', b'v', b'1', 0, 0, 0, 0,
        ];
        assert_eq!(got, expect);
    }

    use super::*;

    /// `RTM_NEWLINK` with `IFLA_PROP_LIST { IFLA_ALT_IFNAME… }`, as the
    /// kernel reports a link that `ip link property add` (or udev) gave
    /// alternative names.
    #[test]
    fn link_reads_alt_names() {
        let lm = set_link(
            7,
            vec![
                LinkAttribute::IfName("ens1f0v1".into()),
                LinkAttribute::PropList(vec![
                    Prop::AltIfName("enp59s0f0v1".into()),
                    Prop::AltIfName("vf-by-path".into()),
                ]),
            ],
        );
        // Through the wire format, as a reply arrives.
        let parsed = RouteMessage::deserialize(&to_bytes(&newlink(lm))).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = parsed.payload else {
            panic!("not a NewLink");
        };
        let link = link_from_message(&lm);
        assert_eq!(link.name, "ens1f0v1");
        assert_eq!(link.alt_names, ["enp59s0f0v1", "vf-by-path"]);
        assert!(link_from_message(&set_link(7, vec![])).alt_names.is_empty());
    }

    #[test]
    fn move_link_carries_netns_name_mac_mtu_and_flags_in_one_message() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let m = move_link(7, 42, "net1", Some(mac), Some(9000), true);
        assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = &m.payload else {
            panic!("{m:?}");
        };
        assert_eq!(lm.header.index, 7);
        assert_eq!(lm.header.flags, LinkFlags::Up);
        assert_eq!(lm.header.change_mask, LinkFlags::Up);
        assert_eq!(
            lm.attributes,
            vec![
                LinkAttribute::NetNsFd(42),
                LinkAttribute::IfName("net1".into()),
                LinkAttribute::Address(mac.0.to_vec()),
                LinkAttribute::Mtu(9000),
            ]
        );
        // Down, nothing else: only the namespace and the name; the flags
        // still say "down" (a move closes the device anyway).
        let bytes = to_bytes(&move_link(7, 42, "net1", None, None, false));
        assert_eq!(&bytes[24..32], &[0, 0, 0, 0, 1, 0, 0, 0]);
        let back = RouteMessage::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = back.payload else {
            panic!("{back:?}");
        };
        assert_eq!(
            lm.attributes,
            vec![
                LinkAttribute::NetNsFd(42),
                LinkAttribute::IfName("net1".into())
            ]
        );
    }

    #[test]
    fn set_up_and_down_flags() {
        let up = to_bytes(&set_up(7, true));
        let down = to_bytes(&set_up(7, false));
        // ifi_flags at 24..28, ifi_change at 28..32.
        assert_eq!(&up[24..32], &[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&down[24..32], &[0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&up[20..24], &7u32.to_ne_bytes());
    }

    #[test]
    fn vf_reply_round_trips() {
        // Encode a reply-shaped message with two VFs (unordered) and decode.
        let a = vf_attributes(
            1,
            &[
                VfSetting::Mac("02:00:00:00:00:01".parse().unwrap()),
                VfSetting::VlanList(VfVlan {
                    vlan: 7,
                    qos: 2,
                    proto: VlanProto::Dot1Ad,
                }),
                VfSetting::SpoofCheck(false),
                VfSetting::Trust(true),
                VfSetting::LinkState(VfLinkState::Disable),
                VfSetting::Rate {
                    min_mbps: 10,
                    max_mbps: 100,
                },
            ],
        );
        let b = vf_attributes(
            0,
            &[
                VfSetting::Mac(MacAddr::ZERO),
                VfSetting::Vlan(VfVlan::new(3)),
            ],
        );
        let lm = set_link(
            4,
            vec![LinkAttribute::VfInfoList(vec![
                rl::LinkVfInfo(a),
                rl::LinkVfInfo(b),
            ])],
        );
        let bytes = to_bytes(&newlink(lm));
        let parsed = RouteMessage::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = parsed.payload else {
            panic!("not a NewLink");
        };
        let vfs = vfs_from_message(&lm);
        assert_eq!(vfs.len(), 2);
        assert_eq!(vfs[0].index, 0);
        assert_eq!(vfs[0].vlan, VfVlan::new(3));
        let v1 = &vfs[1];
        assert_eq!(v1.mac.to_string(), "02:00:00:00:00:01");
        assert_eq!(
            v1.vlan,
            VfVlan {
                vlan: 7,
                qos: 2,
                proto: VlanProto::Dot1Ad
            }
        );
        assert_eq!((v1.spoofchk, v1.trust), (Some(false), Some(true)));
        // Nothing in the bytes says "not reported": the values stay.
        let mut marked = vfs.clone();
        mark_unreported(&mut marked, &bytes);
        assert_eq!(marked, vfs);
        assert_eq!(v1.link_state, VfLinkState::Disable);
        assert_eq!((v1.min_tx_rate, v1.max_tx_rate), (10, 100));
    }

    /// Replaces the setting of the 12-byte `{vf, setting}` attribute of
    /// type `kind` for VF `vf` in `bytes`.
    fn patch_setting(bytes: &mut [u8], kind: u16, vf: u32, value: u32) {
        let mut head = vec![12, 0];
        head.extend(kind.to_ne_bytes());
        head.extend(vf.to_ne_bytes());
        let at = bytes
            .windows(head.len())
            .position(|w| w == head)
            .expect("attribute present");
        bytes[at + 8..at + 12].copy_from_slice(&value.to_ne_bytes());
    }

    #[test]
    fn spoofchk_and_trust_a_driver_does_not_report_are_unknown_not_off() {
        // Two VFs; the kernel says -1 for VF 1's spoofchk and VF 0's trust
        // (what it sends when ndo_get_vf_config leaves them alone).
        let vf = |i: u32| {
            rl::LinkVfInfo(vf_attributes(
                i,
                &[
                    VfSetting::Mac(MacAddr::ZERO),
                    VfSetting::SpoofCheck(true),
                    VfSetting::Trust(true),
                ],
            ))
        };
        let lm = set_link(4, vec![LinkAttribute::VfInfoList(vec![vf(0), vf(1)])]);
        let mut bytes = to_bytes(&newlink(lm));
        patch_setting(&mut bytes, IFLA_VF_SPOOFCHK, 1, u32::MAX);
        patch_setting(&mut bytes, IFLA_VF_TRUST, 0, u32::MAX);
        let parsed = RouteMessage::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = parsed.payload else {
            panic!("not a NewLink");
        };
        let mut vfs = vfs_from_message(&lm);
        // The decoder alone reads -1 as off.
        assert_eq!(vfs[1].spoofchk, Some(false));
        mark_unreported(&mut vfs, &bytes);
        assert_eq!((vfs[0].spoofchk, vfs[0].trust), (Some(true), None));
        assert_eq!((vfs[1].spoofchk, vfs[1].trust), (None, Some(true)));
        // Short and malformed input marks nothing and does not panic.
        for cut in [0, 20, 32, 40, bytes.len() - 3] {
            let mut v = vfs_from_message(&lm);
            mark_unreported(&mut v, &bytes[..cut]);
        }
    }

    #[test]
    fn vf_query_asks_for_vfs_without_stats() {
        let b = to_bytes(&get_link(&LinkId::Name("ens1f0".into()), true));
        // RTM_GETLINK, NLM_F_REQUEST only.
        assert_eq!(&b[4..8], &[18, 0, 1, 0]);
        // IFLA_EXT_MASK (29) = RTEXT_FILTER_VF (1) | RTEXT_FILTER_SKIP_STATS (8).
        let tail = &b[b.len() - 8..];
        assert_eq!(tail, &[8, 0, 29, 0, 9, 0, 0, 0]);
    }

    #[test]
    fn normalize_zeroes_seq_pid_ifindex() {
        let mut b = to_bytes(&set_mtu(9, 1500));
        b[8] = 1;
        b[12] = 2;
        normalize(&mut b);
        assert_eq!(&b[8..24], &[0u8; 16]);
    }
}
