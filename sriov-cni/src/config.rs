//! The network configuration on stdin: every field of sriov-cni's, parsed
//! and validated before anything on the node is touched.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use sriov_host::PciAddress;
use sriov_host::netlink::{MacAddr, VfLinkState, VfSetting, VfVlan, VlanProto};

use crate::error::{CniError, Code, Result};

/// CNI spec versions this plugin accepts in `cniVersion`, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version.
pub const LATEST_VERSION: &str = "1.1.0";

/// Where state lives unless `dataDir` says otherwise (sriov-cni's too).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/sriov";

/// One attachment named by GC's `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Attachment {
    /// The container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name.
    pub ifname: String,
}

#[derive(Debug, Default, Deserialize)]
struct RawRuntimeConfig {
    mac: Option<String>,
    ips: Option<Vec<String>>,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    #[serde(rename = "CNIDeviceInfoFile")]
    device_info_file: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawConf {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    vlan: Option<i64>,
    #[serde(rename = "vlanQoS")]
    vlan_qos: Option<i64>,
    #[serde(rename = "vlanProto")]
    vlan_proto: Option<String>,
    mac: Option<String>,
    spoofchk: Option<String>,
    trust: Option<String>,
    link_state: Option<String>,
    min_tx_rate: Option<i64>,
    max_tx_rate: Option<i64>,
    mtu: Option<i64>,
    ipam: Option<Value>,
    #[serde(rename = "logLevel")]
    log_level: Option<String>,
    #[serde(rename = "logFile")]
    log_file: Option<String>,
    #[serde(rename = "dataDir")]
    data_dir: Option<String>,
    #[serde(rename = "runtimeConfig")]
    runtime_config: Option<RawRuntimeConfig>,
    #[serde(rename = "prevResult")]
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
    #[serde(rename = "cni.dev/attachments")]
    attachments: Option<Vec<Attachment>>,
}

/// The VF settings a config asks for on the PF (only the fields it sets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VfSettings {
    /// `vlan`, `vlanQoS`, `vlanProto` (present when `vlan` is).
    pub vlan: Option<VfVlan>,
    /// `spoofchk`.
    pub spoofchk: Option<bool>,
    /// `trust`.
    pub trust: Option<bool>,
    /// `link_state`.
    pub link_state: Option<VfLinkState>,
    /// `min_tx_rate`, `max_tx_rate` (either set; the other is 0).
    pub rate: Option<(u32, u32)>,
}

impl VfSettings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == VfSettings::default()
    }

    /// As netlink settings, in sriov-cni's order (vlan, spoofchk, trust,
    /// link state, rate). MAC is handled separately.
    pub fn to_settings(&self) -> Vec<VfSetting> {
        let mut v = Vec::new();
        if let Some(vlan) = self.vlan {
            v.push(VfSetting::Vlan(vlan));
        }
        if let Some(b) = self.spoofchk {
            v.push(VfSetting::SpoofCheck(b));
        }
        if let Some(b) = self.trust {
            v.push(VfSetting::Trust(b));
        }
        if let Some(s) = self.link_state {
            v.push(VfSetting::LinkState(s));
        }
        if let Some((min_mbps, max_mbps)) = self.rate {
            v.push(VfSetting::Rate { min_mbps, max_mbps });
        }
        v
    }
}

/// The IPAM section.
#[derive(Debug, Clone, PartialEq)]
pub struct IpamConf {
    /// `ipam.type`: the plugin binary to run.
    pub kind: String,
}

/// A validated network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// `cniVersion`.
    pub cni_version: String,
    /// `name`.
    pub name: String,
    /// `type`.
    pub kind: String,
    /// `deviceID` (or `runtimeConfig.deviceID`), when given.
    pub device_id: Option<PciAddress>,
    /// `runtimeConfig.CNIDeviceInfoFile` (the `CNIDeviceInfoFile`
    /// capability): the attachment's device-info file, a node path.
    pub device_info_file: Option<PathBuf>,
    /// VF settings for the PF.
    pub vf: VfSettings,
    /// The MAC to give the VF (`runtimeConfig.mac`, else CNI_ARGS `MAC`,
    /// else `mac`).
    pub mac: Option<MacAddr>,
    /// `mtu`.
    pub mtu: Option<u32>,
    /// `ipam`, when it names a plugin.
    pub ipam: Option<IpamConf>,
    /// `runtimeConfig.ips`.
    pub runtime_ips: Vec<String>,
    /// `logLevel`.
    pub log_level: Option<String>,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `dataDir` or [`DEFAULT_DATA_DIR`].
    pub data_dir: PathBuf,
    /// `prevResult`.
    pub prev_result: Option<Value>,
    /// GC: `cni.dev/valid-attachments` (or `cni.dev/attachments`).
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The whole config as parsed (kept in the state file).
    pub raw: Value,
}

/// Parses only `cniVersion` (for errors when the rest does not parse).
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "cniVersion")]
        v: Option<String>,
    }
    serde_json::from_slice::<V>(stdin).ok()?.v
}

/// Whether `v` is a supported `cniVersion`.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

fn bad(msg: String) -> CniError {
    CniError::config(msg)
}

fn on_off(field: &str, v: &str) -> Result<bool> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(bad(format!(
            "{field} {v:?} is invalid: use \"on\" or \"off\""
        ))),
    }
}

fn unicast_mac(field: &str, s: &str) -> Result<MacAddr> {
    let mac: MacAddr = s.parse().map_err(|e| bad(format!("{field}: {e}")))?;
    if mac.is_zero() || mac.0[0] & 1 == 1 {
        return Err(bad(format!(
            "{field} {s:?} is not a unicast address (zero or multicast)"
        )));
    }
    Ok(mac)
}

impl NetConf {
    /// Parses and validates `stdin`. `cni_args_mac` is CNI_ARGS `MAC`.
    pub fn parse(stdin: &[u8], cni_args_mac: Option<&str>) -> Result<NetConf> {
        let raw_value: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                Code::Decode,
                "cannot decode the network configuration on stdin",
                e.to_string(),
            )
        })?;
        if !raw_value.is_object() {
            return Err(CniError::new(
                Code::Decode,
                "the network configuration on stdin is not a JSON object",
                "",
            ));
        }
        let raw: RawConf = serde_json::from_value(raw_value.clone()).map_err(|e| {
            CniError::new(
                Code::Decode,
                "cannot decode the network configuration on stdin",
                e.to_string(),
            )
        })?;
        if raw.cni_version.is_empty() {
            return Err(bad("cniVersion is missing".into()));
        }
        if !is_supported(&raw.cni_version) {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!("cniVersion {:?} is not supported", raw.cni_version),
                format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        let rc = raw.runtime_config.unwrap_or_default();

        let device_str = rc.device_id.as_ref().or(raw.device_id.as_ref());
        let device_id = match device_str {
            None => None,
            Some(s) => Some(PciAddress::parse(s).ok_or_else(|| {
                bad(format!(
                    "deviceID {s:?} is not a PCI address (expected DDDD:BB:DD.F like 0000:3b:02.0)"
                ))
            })?),
        };

        let device_info_file = rc
            .device_info_file
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(crate::device_info::validate_path)
            .transpose()?;

        let vlan = match raw.vlan {
            None => None,
            Some(v) if (0..=4094).contains(&v) => Some(v as u16),
            Some(v) => return Err(bad(format!("vlan {v} is out of range 0..=4094"))),
        };
        let qos = match raw.vlan_qos {
            None => None,
            Some(q) if (0..=7).contains(&q) => Some(q as u8),
            Some(q) => return Err(bad(format!("vlanQoS {q} is out of range 0..=7"))),
        };
        let proto = match &raw.vlan_proto {
            None => None,
            Some(p) => Some(
                p.parse::<VlanProto>()
                    .map_err(|e| bad(format!("vlanProto: {e}")))?,
            ),
        };
        if vlan.is_none() && (qos.is_some() || proto.is_some()) {
            return Err(bad(
                "vlanQoS and vlanProto need a vlan: set vlan (1..=4094) or remove them".into(),
            ));
        }
        if vlan == Some(0) && qos.is_some_and(|q| q != 0) {
            return Err(bad("vlanQoS needs a non-zero vlan".into()));
        }
        if vlan == Some(0) && proto == Some(VlanProto::Dot1Ad) {
            return Err(bad("vlanProto 802.1ad needs a non-zero vlan".into()));
        }
        let vlan = vlan.map(|vlan| VfVlan {
            vlan,
            qos: qos.unwrap_or(0),
            proto: proto.unwrap_or_default(),
        });

        let spoofchk = raw
            .spoofchk
            .as_deref()
            .map(|v| on_off("spoofchk", v))
            .transpose()?;
        let trust = raw
            .trust
            .as_deref()
            .map(|v| on_off("trust", v))
            .transpose()?;
        let link_state = match raw.link_state.as_deref() {
            None => None,
            Some(s) => Some(
                s.parse::<VfLinkState>()
                    .map_err(|e| bad(format!("link_state: {e}")))?,
            ),
        };
        let rate_of = |field: &str, v: Option<i64>| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(r) if (0..=u32::MAX as i64).contains(&r) => Ok(Some(r as u32)),
                Some(r) => Err(bad(format!("{field} {r} is out of range (Mbps, >= 0)"))),
            }
        };
        let min = rate_of("min_tx_rate", raw.min_tx_rate)?;
        let max = rate_of("max_tx_rate", raw.max_tx_rate)?;
        if let (Some(mi), Some(ma)) = (min, max)
            && ma != 0
            && mi > ma
        {
            return Err(bad(format!(
                "min_tx_rate {mi} is above max_tx_rate {ma}; min must be <= max (max 0 = unlimited)"
            )));
        }
        let rate = match (min, max) {
            (None, None) => None,
            (mi, ma) => Some((mi.unwrap_or(0), ma.unwrap_or(0))),
        };

        let mac_src = rc
            .mac
            .as_deref()
            .map(|m| ("runtimeConfig.mac", m))
            .or(cni_args_mac.map(|m| ("CNI_ARGS MAC", m)))
            .or(raw.mac.as_deref().map(|m| ("mac", m)));
        let mac = match mac_src {
            None => None,
            Some((field, s)) => Some(unicast_mac(field, s)?),
        };
        // A config mac that is overridden must still be valid.
        if let Some(m) = raw.mac.as_deref() {
            unicast_mac("mac", m)?;
        }

        let mtu = match raw.mtu {
            None => None,
            Some(m) if (68..=65535).contains(&m) => Some(m as u32),
            Some(m) => return Err(bad(format!("mtu {m} is out of range 68..=65535"))),
        };

        let ipam = match &raw.ipam {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => match o.get("type") {
                None => None,
                Some(Value::String(t)) if t.is_empty() => None,
                Some(Value::String(t)) => {
                    if t.contains('/') {
                        return Err(bad(format!(
                            "ipam.type {t:?} must be a plugin name, not a path"
                        )));
                    }
                    Some(IpamConf { kind: t.clone() })
                }
                Some(other) => return Err(bad(format!("ipam.type {other} is not a string"))),
            },
            Some(other) => return Err(bad(format!("ipam {other} is not an object"))),
        };
        let runtime_ips = rc.ips.unwrap_or_default();
        for ip in &runtime_ips {
            parse_cidr(ip).map_err(|e| bad(format!("runtimeConfig.ips: {e}")))?;
        }
        if !runtime_ips.is_empty() && ipam.is_none() {
            return Err(CniError::new(
                Code::UnsupportedField,
                "runtimeConfig.ips needs an IPAM plugin",
                "configure ipam (e.g. {\"type\":\"static\"}) to use the ips capability",
            ));
        }

        if let Some(l) = &raw.log_level
            && !matches!(
                l.to_ascii_lowercase().as_str(),
                "panic" | "error" | "warning" | "warn" | "info" | "debug" | "trace"
            )
        {
            return Err(bad(format!(
                "logLevel {l:?} is invalid: use panic, error, warning, info or debug"
            )));
        }
        let data_dir = match raw.data_dir.as_deref() {
            None | Some("") => PathBuf::from(DEFAULT_DATA_DIR),
            Some(d) if d.starts_with('/') => PathBuf::from(d),
            Some(d) => return Err(bad(format!("dataDir {d:?} must be an absolute path"))),
        };

        Ok(NetConf {
            cni_version: raw.cni_version,
            name: raw.name,
            kind: raw.kind,
            device_id,
            device_info_file,
            vf: VfSettings {
                vlan,
                spoofchk,
                trust,
                link_state,
                rate,
            },
            mac,
            mtu,
            ipam,
            runtime_ips,
            log_level: raw.log_level,
            log_file: raw.log_file.filter(|f| !f.is_empty()).map(PathBuf::from),
            data_dir,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments.or(raw.attachments),
            raw: raw_value,
        })
    }
}

/// Parses `10.1.2.3/24` or `fd00::5/64`.
pub fn parse_cidr(s: &str) -> std::result::Result<(IpAddr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not an address/prefix-length"))?;
    let ip: IpAddr = ip.parse().map_err(|_| format!("{s:?}: bad address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{s:?}: bad prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("{s:?}: prefix length above {max}"));
    }
    Ok((ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(j: &str) -> Result<NetConf> {
        NetConf::parse(j.as_bytes(), None)
    }

    const BASE: &str =
        r#""cniVersion":"1.0.0","name":"n","type":"sriov","deviceID":"0000:3b:02.0""#;

    fn with(extra: &str) -> Result<NetConf> {
        if extra.is_empty() {
            parse(&format!("{{{BASE}}}"))
        } else {
            parse(&format!("{{{BASE},{extra}}}"))
        }
    }

    #[test]
    fn full_config_parses() {
        let c = with(
            r#""vlan":100,"vlanQoS":3,"vlanProto":"802.1AD","mac":"02:00:00:00:00:01","spoofchk":"off","trust":"on","link_state":"disable","min_tx_rate":10,"max_tx_rate":100,"mtu":9000,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"},"logLevel":"debug","logFile":"/tmp/x.log","dataDir":"/tmp/s","runtimeConfig":{"ips":["10.0.0.5/24"]},"capabilities":{"ips":true},"unknownField":1"#,
        )
        .unwrap();
        assert_eq!(c.device_id.unwrap().to_string(), "0000:3b:02.0");
        assert_eq!(
            c.vf.vlan,
            Some(VfVlan {
                vlan: 100,
                qos: 3,
                proto: VlanProto::Dot1Ad
            })
        );
        assert_eq!(c.vf.spoofchk, Some(false));
        assert_eq!(c.vf.trust, Some(true));
        assert_eq!(c.vf.link_state, Some(VfLinkState::Disable));
        assert_eq!(c.vf.rate, Some((10, 100)));
        assert_eq!(c.mtu, Some(9000));
        assert_eq!(c.ipam.unwrap().kind, "host-local");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/s"));
        assert_eq!(c.vf.to_settings().len(), 5);
    }

    #[test]
    fn defaults_and_minimal() {
        let c = with("").unwrap();
        assert!(c.vf.is_empty());
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.ipam.is_none());
        // ipam without type (as Go's `IPAM.Type != ""`) is no IPAM
        assert!(with(r#""ipam":{}"#).unwrap().ipam.is_none());
        // no deviceID is fine at parse time (DEL reads it from state)
        let c = parse(r#"{"cniVersion":"0.4.0","name":"n","type":"sriov"}"#).unwrap();
        assert!(c.device_id.is_none());
    }

    #[test]
    fn runtime_config_overrides() {
        let c = with(
            r#""mac":"02:00:00:00:00:01","runtimeConfig":{"mac":"02:00:00:00:00:02","deviceID":"0000:3b:02.4"}"#,
        )
        .unwrap();
        assert_eq!(c.mac.unwrap().to_string(), "02:00:00:00:00:02");
        assert_eq!(c.device_id.unwrap().to_string(), "0000:3b:02.4");
        let c = NetConf::parse(
            format!("{{{BASE},\"mac\":\"02:00:00:00:00:01\"}}").as_bytes(),
            Some("02:00:00:00:00:03"),
        )
        .unwrap();
        assert_eq!(c.mac.unwrap().to_string(), "02:00:00:00:00:03");
    }

    #[test]
    fn invalid_configs_get_code_7() {
        for extra in [
            r#""deviceID":"eth0""#,
            r#""vlan":4095"#,
            r#""vlan":-1"#,
            r#""vlan":10,"vlanQoS":8"#,
            r#""vlanQoS":1"#,
            r#""vlanProto":"802.1ad""#,
            r#""vlan":0,"vlanQoS":2"#,
            r#""vlan":0,"vlanProto":"802.1ad""#,
            r#""vlan":10,"vlanProto":"qinq""#,
            r#""spoofchk":"yes""#,
            r#""trust":"On""#,
            r#""link_state":"up""#,
            r#""min_tx_rate":100,"max_tx_rate":10"#,
            r#""min_tx_rate":-5"#,
            r#""mac":"01:00:00:00:00:01""#,
            r#""mac":"00:00:00:00:00:00""#,
            r#""mac":"zz""#,
            r#""mtu":10"#,
            r#""ipam":{"type":"../evil"}"#,
            r#""ipam":"host-local""#,
            r#""logLevel":"loud""#,
            r#""dataDir":"relative/dir""#,
            r#""runtimeConfig":{"deviceID":"nope"}"#,
        ] {
            // "deviceID" appears twice for the first case: serde takes the last.
            let e = with(extra).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig, "{extra}: {e}");
        }
    }

    #[test]
    fn other_codes() {
        assert_eq!(parse("not json").unwrap_err().code, Code::Decode);
        assert_eq!(parse("[1]").unwrap_err().code, Code::Decode);
        assert_eq!(with(r#""vlan":"ten""#).unwrap_err().code, Code::Decode);
        let e = parse(r#"{"cniVersion":"0.2.0","name":"n","type":"sriov"}"#).unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
        let e = parse(r#"{"cniVersion":"9.9.9","name":"n","type":"sriov"}"#).unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
        let e = with(r#""runtimeConfig":{"ips":["10.0.0.1/24"]}"#).unwrap_err();
        assert_eq!(e.code, Code::UnsupportedField);
        assert_eq!(
            peek_version(b"{\"cniVersion\":\"0.4.0\"}").as_deref(),
            Some("0.4.0")
        );
    }

    #[test]
    fn max_rate_zero_is_unlimited() {
        let c = with(r#""min_tx_rate":100,"max_tx_rate":0"#).unwrap();
        assert_eq!(c.vf.rate, Some((100, 0)));
        let c = with(r#""max_tx_rate":50"#).unwrap();
        assert_eq!(c.vf.rate, Some((0, 50)));
    }

    #[test]
    fn gc_attachments() {
        let c = parse(r#"{"cniVersion":"1.1.0","name":"n","type":"sriov","cni.dev/valid-attachments":[{"containerID":"a","ifname":"net1"}]}"#).unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "a");
        let c = parse(r#"{"cniVersion":"1.1.0","name":"n","type":"sriov","cni.dev/attachments":[{"containerID":"b","ifname":"net1"}]}"#).unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "b");
    }
}
