//! Per-VF settings of an SR-IOV PF, as read from and written to the PF's
//! `IFLA_VFINFO_LIST`.

use std::fmt;
use std::str::FromStr;

use super::link::MacAddr;

/// VLAN tag protocol of a VF's port VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VlanProto {
    /// 802.1Q (`0x8100`), the default.
    #[default]
    Dot1Q,
    /// 802.1ad (`0x88a8`, QinQ service tag).
    Dot1Ad,
}

impl VlanProto {
    /// The EtherType.
    pub fn ethertype(self) -> u16 {
        match self {
            VlanProto::Dot1Q => 0x8100,
            VlanProto::Dot1Ad => 0x88a8,
        }
    }

    /// From an EtherType; `None` for anything but 0x8100 / 0x88a8.
    pub fn from_ethertype(t: u16) -> Option<VlanProto> {
        match t {
            0x8100 => Some(VlanProto::Dot1Q),
            0x88a8 => Some(VlanProto::Dot1Ad),
            _ => None,
        }
    }
}

impl fmt::Display for VlanProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VlanProto::Dot1Q => "802.1Q",
            VlanProto::Dot1Ad => "802.1ad",
        })
    }
}

/// Error parsing a [`VlanProto`] or [`VfLinkState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected one of {expected}")]
pub struct ParseVfError {
    /// What was parsed.
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted spellings.
    pub expected: &'static str,
}

impl FromStr for VlanProto {
    type Err = ParseVfError;
    /// Accepts `802.1Q` / `802.1q` and `802.1ad` / `802.1AD` (the spellings
    /// of iproute2 and of sriov-cni's `vlanProto`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "802.1q" => Ok(VlanProto::Dot1Q),
            "802.1ad" => Ok(VlanProto::Dot1Ad),
            _ => Err(ParseVfError {
                what: "VLAN protocol",
                value: s.to_owned(),
                expected: "802.1Q, 802.1ad",
            }),
        }
    }
}

/// Administrative link state of a VF (`ip link set PF vf N state …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VfLinkState {
    /// Follow the PF's link (`IFLA_VF_LINK_STATE_AUTO`, 0).
    #[default]
    Auto,
    /// Always up (`IFLA_VF_LINK_STATE_ENABLE`, 1).
    Enable,
    /// Always down (`IFLA_VF_LINK_STATE_DISABLE`, 2).
    Disable,
}

impl VfLinkState {
    /// The kernel's `IFLA_VF_LINK_STATE_*` value.
    pub fn as_u32(self) -> u32 {
        match self {
            VfLinkState::Auto => 0,
            VfLinkState::Enable => 1,
            VfLinkState::Disable => 2,
        }
    }

    /// From the kernel's value; `None` for unknown values.
    pub fn from_u32(v: u32) -> Option<VfLinkState> {
        match v {
            0 => Some(VfLinkState::Auto),
            1 => Some(VfLinkState::Enable),
            2 => Some(VfLinkState::Disable),
            _ => None,
        }
    }
}

impl fmt::Display for VfLinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VfLinkState::Auto => "auto",
            VfLinkState::Enable => "enable",
            VfLinkState::Disable => "disable",
        })
    }
}

impl FromStr for VfLinkState {
    type Err = ParseVfError;
    /// Accepts `auto`, `enable`, `disable` (iproute2 and sriov-cni's
    /// `link_state`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(VfLinkState::Auto),
            "enable" => Ok(VfLinkState::Enable),
            "disable" => Ok(VfLinkState::Disable),
            _ => Err(ParseVfError {
                what: "VF link state",
                value: s.to_owned(),
                expected: "auto, enable, disable",
            }),
        }
    }
}

/// A VF's port VLAN: VLAN id 0 with qos 0 means "no VLAN".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VfVlan {
    /// VLAN id, 0..=4095.
    pub vlan: u16,
    /// 802.1p priority, 0..=7.
    pub qos: u8,
    /// Tag protocol.
    pub proto: VlanProto,
}

impl VfVlan {
    /// VLAN `vlan` with qos 0, 802.1Q.
    pub fn new(vlan: u16) -> VfVlan {
        VfVlan {
            vlan,
            qos: 0,
            proto: VlanProto::Dot1Q,
        }
    }
}

/// One per-VF setting. A [`LinkOps::set_vf`](super::LinkOps::set_vf) call
/// sends all its settings in one `RTM_NEWLINK` message, in the order given,
/// exactly as `ip link set PF vf N <settings in the same order>` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VfSetting {
    /// `mac XX:XX:…` (`IFLA_VF_MAC`).
    Mac(MacAddr),
    /// `vlan V qos Q [proto P]`, encoded as iproute2 does: `IFLA_VF_VLAN`
    /// for 802.1Q, `IFLA_VF_VLAN_LIST` for 802.1ad.
    Vlan(VfVlan),
    /// The same VLAN always as `IFLA_VF_VLAN_LIST` (one
    /// `IFLA_VF_VLAN_INFO` entry carrying the protocol), the fallback for a
    /// kernel path that rejects the legacy form.
    VlanList(VfVlan),
    /// `spoofchk on|off` (`IFLA_VF_SPOOFCHK`).
    SpoofCheck(bool),
    /// `trust on|off` (`IFLA_VF_TRUST`).
    Trust(bool),
    /// `state auto|enable|disable` (`IFLA_VF_LINK_STATE`).
    LinkState(VfLinkState),
    /// `min_tx_rate MIN max_tx_rate MAX` in Mbit/s, 0 = unlimited
    /// (`IFLA_VF_RATE`).
    Rate {
        /// Minimum guaranteed rate, Mbit/s.
        min_mbps: u32,
        /// Maximum rate, Mbit/s.
        max_mbps: u32,
    },
}

impl VfSetting {
    /// The iproute2 words for this setting (`vlan 10 qos 3 proto 802.1ad`),
    /// used in error messages and by the byte-compatibility tests.
    pub fn ip_args(&self) -> String {
        match self {
            VfSetting::Mac(m) => format!("mac {m}"),
            VfSetting::Vlan(v) | VfSetting::VlanList(v) => {
                let mut s = format!("vlan {} qos {}", v.vlan, v.qos);
                if v.proto != VlanProto::Dot1Q || matches!(self, VfSetting::VlanList(_)) {
                    s.push_str(&format!(" proto {}", v.proto));
                }
                s
            }
            VfSetting::SpoofCheck(on) => format!("spoofchk {}", on_off(*on)),
            VfSetting::Trust(on) => format!("trust {}", on_off(*on)),
            VfSetting::LinkState(st) => format!("state {st}"),
            VfSetting::Rate { min_mbps, max_mbps } => {
                format!("min_tx_rate {min_mbps} max_tx_rate {max_mbps}")
            }
        }
    }

    /// What this setting is called in messages ("VF link state").
    pub fn what(&self) -> &'static str {
        match self {
            VfSetting::Mac(_) => "VF MAC address",
            VfSetting::Vlan(_) => "VF VLAN",
            VfSetting::VlanList(_) => "VF VLAN (IFLA_VF_VLAN_LIST)",
            VfSetting::SpoofCheck(_) => "VF spoof checking",
            VfSetting::Trust(_) => "VF trust",
            VfSetting::LinkState(_) => "VF link state",
            VfSetting::Rate { .. } => "VF tx rate limits",
        }
    }

    /// Checks ranges the kernel would otherwise reject with a bare EINVAL:
    /// vlan ≤ 4095, qos ≤ 7, min rate ≤ max rate (when max is set), a
    /// 802.1ad VLAN sent in the legacy form is impossible by construction.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            VfSetting::Vlan(v) | VfSetting::VlanList(v) => {
                if v.vlan > 4095 {
                    return Err(format!("VLAN id {} is out of range 0..=4095", v.vlan));
                }
                if v.qos > 7 {
                    return Err(format!("VLAN qos {} is out of range 0..=7", v.qos));
                }
                if v.vlan == 0 && v.qos != 0 {
                    return Err("VLAN qos needs a non-zero VLAN id".into());
                }
                Ok(())
            }
            VfSetting::Rate { min_mbps, max_mbps } => {
                if *max_mbps != 0 && min_mbps > max_mbps {
                    return Err(format!(
                        "min_tx_rate {min_mbps} is above max_tx_rate {max_mbps}"
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// One VF as its PF reports it (`ip link show PF`, the `vf N …` lines).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VfInfo {
    /// VF index on the PF.
    pub index: u32,
    /// Administratively set MAC; [`MacAddr::ZERO`] when none is set.
    pub mac: MacAddr,
    /// Port VLAN (0 = none), qos and protocol. When the kernel reports a
    /// VLAN list the first entry is used.
    pub vlan: VfVlan,
    /// Spoof checking; `None` when the driver does not report it (the
    /// kernel then sends the "not set" value, -1, that `ip link` hides).
    pub spoofchk: Option<bool>,
    /// Trust; `None` when the driver does not report it (as for
    /// [`spoofchk`](Self::spoofchk)).
    pub trust: Option<bool>,
    /// Administrative link state.
    pub link_state: VfLinkState,
    /// Minimum tx rate, Mbit/s (0 = none).
    pub min_tx_rate: u32,
    /// Maximum tx rate, Mbit/s (0 = unlimited).
    pub max_tx_rate: u32,
}

impl VfInfo {
    /// A VF's state with all defaults: no MAC, no VLAN, spoof checking on,
    /// trust off, link state auto, no rate limits (what `igb` and most
    /// drivers show right after `sriov_numvfs` is written).
    pub fn fresh(index: u32) -> VfInfo {
        VfInfo {
            index,
            spoofchk: Some(true),
            trust: Some(false),
            ..Default::default()
        }
    }

    /// Applies `setting` to this record (what the kernel would store).
    pub fn apply(&mut self, setting: &VfSetting) {
        match *setting {
            VfSetting::Mac(m) => self.mac = m,
            VfSetting::Vlan(v) | VfSetting::VlanList(v) => self.vlan = v,
            VfSetting::SpoofCheck(b) => self.spoofchk = Some(b),
            VfSetting::Trust(b) => self.trust = Some(b),
            VfSetting::LinkState(s) => self.link_state = s,
            VfSetting::Rate { min_mbps, max_mbps } => {
                self.min_tx_rate = min_mbps;
                self.max_tx_rate = max_mbps;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!("802.1AD".parse::<VlanProto>().unwrap(), VlanProto::Dot1Ad);
        assert_eq!("802.1q".parse::<VlanProto>().unwrap(), VlanProto::Dot1Q);
        assert!("8021q".parse::<VlanProto>().is_err());
        assert_eq!(
            "disable".parse::<VfLinkState>().unwrap(),
            VfLinkState::Disable
        );
        assert!("off".parse::<VfLinkState>().is_err());
        assert_eq!(VfLinkState::from_u32(2), Some(VfLinkState::Disable));
        assert_eq!(VfLinkState::from_u32(9), None);
        assert_eq!(VlanProto::from_ethertype(0x88a8), Some(VlanProto::Dot1Ad));
    }

    #[test]
    fn ip_args_are_iproute2_words() {
        let v = VfVlan {
            vlan: 10,
            qos: 3,
            proto: VlanProto::Dot1Ad,
        };
        assert_eq!(VfSetting::Vlan(v).ip_args(), "vlan 10 qos 3 proto 802.1ad");
        assert_eq!(VfSetting::Vlan(VfVlan::new(5)).ip_args(), "vlan 5 qos 0");
        assert_eq!(
            VfSetting::VlanList(VfVlan::new(5)).ip_args(),
            "vlan 5 qos 0 proto 802.1Q"
        );
        assert_eq!(VfSetting::Trust(true).ip_args(), "trust on");
        assert_eq!(
            VfSetting::Rate {
                min_mbps: 1,
                max_mbps: 2
            }
            .ip_args(),
            "min_tx_rate 1 max_tx_rate 2"
        );
    }

    #[test]
    fn validation() {
        assert!(VfSetting::Vlan(VfVlan::new(4096)).validate().is_err());
        assert!(
            VfSetting::Vlan(VfVlan {
                vlan: 1,
                qos: 8,
                proto: VlanProto::Dot1Q
            })
            .validate()
            .is_err()
        );
        assert!(
            VfSetting::Vlan(VfVlan {
                vlan: 0,
                qos: 1,
                proto: VlanProto::Dot1Q
            })
            .validate()
            .is_err()
        );
        assert!(VfSetting::Vlan(VfVlan::new(4095)).validate().is_ok());
        assert!(
            VfSetting::Rate {
                min_mbps: 10,
                max_mbps: 5
            }
            .validate()
            .is_err()
        );
        assert!(
            VfSetting::Rate {
                min_mbps: 10,
                max_mbps: 0
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn apply_updates_record() {
        let mut vf = VfInfo::fresh(2);
        vf.apply(&VfSetting::Trust(true));
        vf.apply(&VfSetting::Rate {
            min_mbps: 1,
            max_mbps: 9,
        });
        assert_eq!((vf.trust, vf.spoofchk), (Some(true), Some(true)));
        assert_eq!((vf.min_tx_rate, vf.max_tx_rate), (1, 9));
    }
}
