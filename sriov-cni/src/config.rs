//! The network configuration on stdin: every field of sriov-cni's, parsed
//! and validated before anything on the node is touched.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use sriov_host::PciAddress;
use sriov_host::netlink::{MacAddr, VfLinkState, VfSetting, VfVlan, VlanProto};

use crate::error::{CniError, Code, Result};

/// CNI spec versions this plugin accepts in `cniVersion`, oldest first:
/// the Go plugin's (`version.All`), 0.1.0 and 0.2.0 included.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The version of a config without `cniVersion` (as the Go CNI library
/// reads it).
pub const DEFAULT_VERSION: &str = "0.1.0";

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
    ips: Option<Value>,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    #[serde(rename = "CNIDeviceInfoFile")]
    device_info_file: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawConf {
    #[serde(rename = "cniVersion", default)]
    cni_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
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
    #[serde(rename = "setMtu", default)]
    set_mtu: bool,
    #[serde(rename = "strictCheck", default)]
    strict_check: bool,
}

/// Top-level keys this plugin reads, as it spells them. Keys of the config
/// are matched to these as Go's `encoding/json` matches struct fields: an
/// exact match first, else one equal ignoring (ASCII) case; when several
/// keys match one field, the last one in the document wins.
const KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "deviceID",
    "vlan",
    "vlanQoS",
    "vlanProto",
    "mac",
    "spoofchk",
    "trust",
    "link_state",
    "min_tx_rate",
    "max_tx_rate",
    "mtu",
    "ipam",
    "logLevel",
    "logFile",
    "dataDir",
    "runtimeConfig",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
    "setMtu",
    "strictCheck",
];

/// Keys of `runtimeConfig` this plugin reads.
const RUNTIME_KEYS: &[&str] = &["mac", "ips", "deviceID", "CNIDeviceInfoFile"];

/// An object's members in document order (serde_json's map is sorted).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Renames the members of `pairs` that match one of `known` (see [`KEYS`])
/// to that spelling; later members overwrite earlier ones.
fn fold_keys(
    pairs: impl IntoIterator<Item = (String, Value)>,
    known: &[&'static str],
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (k, v) in pairs {
        let name = known
            .iter()
            .find(|n| **n == k)
            .or_else(|| known.iter().find(|n| n.eq_ignore_ascii_case(&k)))
            .map_or(k, |n| (*n).to_owned());
        out.insert(name, v);
    }
    out
}

/// Folds the nested objects this plugin reads (`runtimeConfig`, and
/// `ipam.type`) the same way.
fn fold_nested(obj: &mut serde_json::Map<String, Value>) {
    if let Some(Value::Object(rc)) = obj.get_mut("runtimeConfig") {
        let m = std::mem::take(rc);
        *rc = fold_keys(m, RUNTIME_KEYS);
    }
    if let Some(Value::Object(ipam)) = obj.get_mut("ipam") {
        let m = std::mem::take(ipam);
        *ipam = fold_keys(m, &["type"]);
    }
}

/// Decodes a config the way the Go plugin's decoder sees it: keys folded
/// (see [`KEYS`]). `Err` is the decoder's message for a non-object.
fn folded(stdin: &[u8]) -> std::result::Result<Value, String> {
    let pairs: Ordered = serde_json::from_slice(stdin).map_err(|e| e.to_string())?;
    let mut obj = fold_keys(pairs.0, KEYS);
    fold_nested(&mut obj);
    Ok(Value::Object(obj))
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
    /// The MTU to set on the VF netdev: `mtu`, only with `setMtu: true`
    /// (the Go plugin never sets it; see `docs/cni.md`).
    pub mtu: Option<u32>,
    /// `mtu` as the config gave it, applied or not.
    pub config_mtu: Option<i64>,
    /// `strictCheck`: CHECK verifies the attachment (the Go plugin's CHECK
    /// verifies nothing).
    pub strict_check: bool,
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
    /// What parsing tolerated (logged once logging is set up).
    pub warnings: Vec<String>,
}

/// Parses only `cniVersion` (for errors when the rest does not parse);
/// `None` when stdin is not an object or has no (non-empty) `cniVersion`.
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    folded(stdin)
        .ok()?
        .get("cniVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether the config asks for the strict CHECK (`strictCheck: true`).
pub fn peek_strict_check(stdin: &[u8]) -> bool {
    folded(stdin)
        .ok()
        .and_then(|v| v.get("strictCheck").and_then(Value::as_bool))
        .unwrap_or(false)
}

/// Whether `v` is at least `min` (both supported versions).
pub fn at_least(v: &str, min: &str) -> bool {
    let pos = |x: &str| SUPPORTED_VERSIONS.iter().position(|s| *s == x);
    matches!((pos(v), pos(min)), (Some(a), Some(b)) if a >= b)
}

/// Whether `v` is a supported `cniVersion`.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

fn bad(msg: String) -> CniError {
    CniError::config(msg)
}

/// `spoofchk`/`trust` as the Go plugin reads them: `""` is unset, `"on"`
/// is on, anything else is off (with a warning unless it is `"off"`).
fn on_off(field: &str, v: &str, warnings: &mut Vec<String>) -> Option<bool> {
    match v {
        "" => None,
        "on" => Some(true),
        "off" => Some(false),
        _ => {
            warnings.push(format!(
                "{field} {v:?} is neither \"on\" nor \"off\"; setting it off, as the Go sriov-cni does"
            ));
            Some(false)
        }
    }
}

/// A MAC in any of the forms Go's `net.ParseMAC` takes for 6 bytes
/// (`02:00:00:aa:bb:cc`, `02-00-00-aa-bb-cc`, `0200.00aa.bbcc`), any case.
fn parse_mac(s: &str) -> std::result::Result<MacAddr, String> {
    let colons = if s.len() == 14 && s.matches('.').count() == 2 {
        let hex: String = s.split('.').collect();
        if hex.len() != 12 {
            return Err(format!("{s:?} is not a MAC address"));
        }
        (0..6)
            .map(|i| &hex[2 * i..2 * i + 2])
            .collect::<Vec<_>>()
            .join(":")
    } else if s.len() == 17 && s.as_bytes()[2] == b'-' {
        s.replace('-', ":")
    } else {
        s.to_owned()
    };
    colons.parse::<MacAddr>().map_err(|e| e.to_string())
}

fn unicast_mac(field: &str, s: &str) -> Result<MacAddr> {
    let mac: MacAddr = parse_mac(s).map_err(|e| bad(format!("{field}: {e}")))?;
    if mac.is_zero() || mac.0[0] & 1 == 1 {
        return Err(bad(format!(
            "{field} {s:?} is not a unicast address (zero or multicast)"
        )));
    }
    Ok(mac)
}

impl NetConf {
    /// Parses and validates `stdin` for ADD (and a strict CHECK): the rules
    /// of the Go plugin's `LoadConf`, tolerating what it tolerates.
    /// `cni_args_mac` is CNI_ARGS `MAC`.
    pub fn parse(stdin: &[u8], cni_args_mac: Option<&str>) -> Result<NetConf> {
        let decode = |e: String| {
            CniError::new(
                Code::Decode,
                "cannot decode the network configuration on stdin",
                e,
            )
        };
        let raw_value: Value = serde_json::from_slice(stdin).map_err(|e| decode(e.to_string()))?;
        if !raw_value.is_object() {
            return Err(CniError::new(
                Code::Decode,
                "the network configuration on stdin is not a JSON object",
                "",
            ));
        }
        let folded = folded(stdin).map_err(decode)?;
        let raw: RawConf = serde_json::from_value(folded).map_err(|e| decode(e.to_string()))?;
        let mut warnings = Vec::new();
        // A JSON null reads as "" for Go's string fields.
        let raw_version = raw.cni_version.clone().unwrap_or_default();
        let cni_version = if raw_version.is_empty() {
            warnings.push(format!(
                "cniVersion is missing; using {DEFAULT_VERSION}, as the Go CNI library does"
            ));
            DEFAULT_VERSION.to_owned()
        } else {
            raw_version
        };
        if !is_supported(&cni_version) {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!("cniVersion {cni_version:?} is not supported"),
                format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        let rc = raw.runtime_config.unwrap_or_default();

        let device_str = rc
            .device_id
            .as_ref()
            .filter(|s| !s.is_empty())
            .or(raw.device_id.as_ref().filter(|s| !s.is_empty()));
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
            .and_then(|v| on_off("spoofchk", v, &mut warnings));
        let trust = raw
            .trust
            .as_deref()
            .and_then(|v| on_off("trust", v, &mut warnings));
        let link_state = match raw.link_state.as_deref() {
            None | Some("") => None,
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

        // An empty MAC is no MAC, wherever it comes from (Go: `!= ""`).
        fn nonempty(m: Option<&str>) -> Option<&str> {
            m.filter(|m| !m.is_empty())
        }
        let mac_src = nonempty(rc.mac.as_deref())
            .map(|m| ("runtimeConfig.mac", m))
            .or(nonempty(cni_args_mac).map(|m| ("CNI_ARGS MAC", m)))
            .or(nonempty(raw.mac.as_deref()).map(|m| ("mac", m)));
        let mac = match mac_src {
            None => None,
            Some((field, s)) => Some(unicast_mac(field, s)?),
        };

        let mtu = match raw.mtu {
            None => None,
            Some(m) if !raw.set_mtu => {
                warnings.push(format!(
                    "mtu {m} is not set on the VF (the Go sriov-cni does not either); add \"setMtu\": true to set it"
                ));
                None
            }
            Some(m) if (68..=65535).contains(&m) => Some(m as u32),
            Some(m) => return Err(bad(format!("mtu {m} is out of range 68..=65535"))),
        };

        let ipam = ipam_of(raw.ipam.as_ref())?;
        let runtime_ips = match rc.ips {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Some(other) => vec![other.to_string()],
        };
        if !runtime_ips.is_empty() && ipam.is_none() {
            warnings.push(
                "runtimeConfig.ips is ignored: there is no IPAM plugin to pass it to (as the Go sriov-cni)"
                    .into(),
            );
        }

        // Any other logLevel means info, as the Go plugin (see run.rs).
        let data_dir = match raw.data_dir.as_deref() {
            None | Some("") => PathBuf::from(DEFAULT_DATA_DIR),
            Some(d) if d.starts_with('/') => PathBuf::from(d),
            Some(d) => return Err(bad(format!("dataDir {d:?} must be an absolute path"))),
        };

        Ok(NetConf {
            cni_version,
            name: raw.name.unwrap_or_default(),
            kind: raw.kind.unwrap_or_default(),
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
            config_mtu: raw.mtu,
            strict_check: raw.strict_check,
            ipam,
            runtime_ips,
            log_level: raw.log_level,
            log_file: raw.log_file.filter(|f| !f.is_empty()).map(PathBuf::from),
            data_dir,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments.or(raw.attachments),
            raw: raw_value,
            warnings,
        })
    }

    /// Parses `stdin` for DEL, GC, STATUS and the Go-style CHECK: they work
    /// from the saved state, so no value of the config is validated. Fails only when
    /// the Go plugin's library would too: stdin is not a JSON object, or
    /// `cniVersion` is not a supported version. Everything a strict parse
    /// accepts comes out the same.
    pub fn parse_lenient(stdin: &[u8], cni_args_mac: Option<&str>) -> Result<NetConf> {
        match NetConf::parse(stdin, cni_args_mac) {
            Ok(c) => return Ok(c),
            Err(e) if matches!(e.code, Code::IncompatibleVersion) => return Err(e),
            Err(e) => {
                if !serde_json::from_slice::<Value>(stdin).is_ok_and(|v| v.is_object()) {
                    return Err(e);
                }
                tracing::debug!("config not valid for ADD ({e}); DEL/CHECK do not need it");
            }
        }
        let raw_value: Value = serde_json::from_slice(stdin).unwrap_or_default();
        let v = folded(stdin).unwrap_or_default();
        let string = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let cni_version = peek_version(stdin).unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        if !is_supported(&cni_version) {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!("cniVersion {cni_version:?} is not supported"),
                format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        let data_dir = Some(string("dataDir"))
            .filter(|d| d.starts_with('/'))
            .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from);
        Ok(NetConf {
            cni_version,
            name: string("name"),
            kind: string("type"),
            device_id: None,
            device_info_file: None,
            vf: VfSettings::default(),
            mac: None,
            mtu: None,
            config_mtu: None,
            strict_check: false,
            ipam: ipam_of(v.get("ipam")).ok().flatten(),
            runtime_ips: Vec::new(),
            log_level: Some(string("logLevel")).filter(|s| !s.is_empty()),
            log_file: Some(string("logFile"))
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            data_dir,
            prev_result: v.get("prevResult").cloned(),
            valid_attachments: ["cni.dev/valid-attachments", "cni.dev/attachments"]
                .iter()
                .find_map(|k| serde_json::from_value(v.get(*k)?.clone()).ok()),
            raw: raw_value,
            warnings: Vec::new(),
        })
    }
}

/// The settings a saved config asked for on the PF, by presence only (as
/// the Go plugin's `ResetVFConfig` decides what to restore): never fails,
/// whatever the values. Values are placeholders; restoring uses the saved
/// original values.
pub fn cached_vf_settings(config: &Value) -> VfSettings {
    let Value::Object(o) = config else {
        return VfSettings::default();
    };
    let obj = fold_keys(o.clone(), KEYS);
    let present = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    let nonempty = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    VfSettings {
        vlan: present("vlan").then(VfVlan::default),
        spoofchk: nonempty("spoofchk").then_some(false),
        trust: nonempty("trust").then_some(false),
        link_state: nonempty("link_state").then(VfLinkState::default),
        rate: (present("min_tx_rate") || present("max_tx_rate")).then_some((0, 0)),
    }
}

fn ipam_of(ipam: Option<&Value>) -> Result<Option<IpamConf>> {
    Ok(match ipam {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => match o.get("type") {
            None | Some(Value::Null) => None,
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
    })
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
            r#""vlan":100,"vlanQoS":3,"vlanProto":"802.1AD","mac":"02:00:00:00:00:01","spoofchk":"off","trust":"on","link_state":"disable","min_tx_rate":10,"max_tx_rate":100,"mtu":9000,"setMtu":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"},"logLevel":"debug","logFile":"/tmp/x.log","dataDir":"/tmp/s","runtimeConfig":{"ips":["10.0.0.5/24"]},"capabilities":{"ips":true},"unknownField":1"#,
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
            r#""link_state":"up""#,
            r#""min_tx_rate":100,"max_tx_rate":10"#,
            r#""min_tx_rate":-5"#,
            r#""mac":"01:00:00:00:00:01""#,
            r#""mac":"00:00:00:00:00:00""#,
            r#""mac":"zz""#,
            r#""mtu":10,"setMtu":true"#,
            r#""ipam":{"type":"../evil"}"#,
            r#""ipam":"host-local""#,
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
        let e = parse(r#"{"cniVersion":"0.0.9","name":"n","type":"sriov"}"#).unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
        let e = parse(r#"{"cniVersion":"9.9.9","name":"n","type":"sriov"}"#).unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
        assert_eq!(
            peek_version(b"{\"cniVersion\":\"0.4.0\"}").as_deref(),
            Some("0.4.0")
        );
    }

    /// Issue 12 item 12: what the Go plugin's `LoadConf` accepts, this
    /// accepts, and reads the same way.
    #[test]
    fn tolerates_what_upstream_tolerates() {
        // "mac": "" is no MAC (also in runtimeConfig and CNI_ARGS).
        let c = with(r#""mac":"""#).unwrap();
        assert_eq!(c.mac, None);
        let c = with(r#""mac":"","runtimeConfig":{"mac":""}"#).unwrap();
        assert_eq!(c.mac, None);
        let c = NetConf::parse(
            format!("{{{BASE},\"mac\":\"02:00:00:00:00:01\"}}").as_bytes(),
            Some(""),
        )
        .unwrap();
        assert_eq!(c.mac.unwrap().to_string(), "02:00:00:00:00:01");
        // Go's net.ParseMAC forms, any case.
        for m in ["02-00-00-AA-BB-CC", "0200.00aa.bbcc", "02:00:00:AA:BB:CC"] {
            let c = with(&format!(r#""mac":"{m}""#)).unwrap();
            assert_eq!(c.mac.unwrap().to_string(), "02:00:00:aa:bb:cc", "{m}");
        }
        // spoofchk/trust: "on" is on, "" unset, anything else off.
        let c = with(r#""spoofchk":"yes","trust":"On""#).unwrap();
        assert_eq!((c.vf.spoofchk, c.vf.trust), (Some(false), Some(false)));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let c = with(r#""spoofchk":"","trust":"on""#).unwrap();
        assert_eq!((c.vf.spoofchk, c.vf.trust), (None, Some(true)));
        // link_state "" is unset.
        assert_eq!(with(r#""link_state":"""#).unwrap().vf.link_state, None);
        // null strings are "" (Go), and any logLevel.
        let c =
            parse(r#"{"cniVersion":null,"name":null,"type":"sriov","mac":null,"spoofchk":null}"#)
                .unwrap();
        assert_eq!(
            (c.cni_version.as_str(), c.name.as_str()),
            (DEFAULT_VERSION, "")
        );
        let c = with(r#""logLevel":"loud""#).unwrap();
        assert_eq!(c.log_level.as_deref(), Some("loud"));
        // No cniVersion: 0.1.0; 0.1.0 and 0.2.0 as they are.
        let c = parse(r#"{"name":"n","type":"sriov","deviceID":"0000:3b:02.0"}"#).unwrap();
        assert_eq!(c.cni_version, DEFAULT_VERSION);
        for v in ["0.1.0", "0.2.0"] {
            let c = parse(&format!(
                r#"{{"cniVersion":"{v}","name":"n","type":"sriov"}}"#
            ))
            .unwrap();
            assert_eq!(c.cni_version, v);
        }
        assert_eq!(peek_version(br#"{"name":"n"}"#), None);
        let c = NetConf::parse_lenient(br#"{"name":"n"}"#, None).unwrap();
        assert_eq!(c.cni_version, DEFAULT_VERSION);
        // runtimeConfig.ips without IPAM: ignored (Go has no such field),
        // whatever its shape.
        let c = with(r#""runtimeConfig":{"ips":["10.0.0.1/24"]}"#).unwrap();
        assert!(c.ipam.is_none());
        assert!(c.warnings.iter().any(|w| w.contains("runtimeConfig.ips")));
        with(r#""runtimeConfig":{"ips":"garbage"}"#).unwrap();
        // mtu is read, not applied (the Go plugin never sets it), and not
        // range-checked then.
        let c = with(r#""mtu":9000"#).unwrap();
        assert_eq!((c.mtu, c.config_mtu), (None, Some(9000)));
        assert_eq!(with(r#""mtu":10"#).unwrap().mtu, None);
        assert_eq!(with(r#""mtu":9000,"setMtu":true"#).unwrap().mtu, Some(9000));
    }

    /// Issue 12 item 12: keys are matched to fields as Go's encoding/json
    /// does: exact first, else ignoring case; the last of several wins.
    #[test]
    fn keys_match_case_insensitively_as_go() {
        let c = parse(
            r#"{"CNIVersion":"1.0.0","Name":"n","TYPE":"sriov","DeviceId":"0000:3b:02.0",
                "VLAN":7,"VlanQos":1,"VLANPROTO":"802.1AD","MAC":"02:00:00:00:00:07",
                "SpoofChk":"on","Trust":"on","Link_State":"enable","Min_Tx_Rate":1,
                "MAX_TX_RATE":9,"IPAM":{"Type":"host-local"},"LogLevel":"debug",
                "RuntimeConfig":{"Mac":"02:00:00:00:00:08","DEVICEID":"0000:3b:02.1"}}"#,
        )
        .unwrap();
        assert_eq!(c.cni_version, "1.0.0");
        assert_eq!(c.name, "n");
        assert_eq!(c.device_id.unwrap().to_string(), "0000:3b:02.1");
        assert_eq!(c.vf.vlan.unwrap().vlan, 7);
        assert_eq!(c.vf.vlan.unwrap().proto, VlanProto::Dot1Ad);
        assert_eq!(c.mac.unwrap().to_string(), "02:00:00:00:00:08");
        assert_eq!((c.vf.spoofchk, c.vf.trust), (Some(true), Some(true)));
        assert_eq!(c.vf.link_state, Some(VfLinkState::Enable));
        assert_eq!(c.vf.rate, Some((1, 9)));
        assert_eq!(c.ipam.unwrap().kind, "host-local");
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        // Document order decides between two spellings of one field.
        let c = with(r#""Vlan":5,"vlan":6"#).unwrap();
        assert_eq!(c.vf.vlan.unwrap().vlan, 6);
        let c = with(r#""vlan":6,"VLAN":5"#).unwrap();
        assert_eq!(c.vf.vlan.unwrap().vlan, 5);
        // DEL/CHECK parsing folds too, and keeps the saved settings' names.
        let s = cached_vf_settings(
            &serde_json::json!({"Vlan": 5, "SPOOFCHK": "yes", "trust": "", "Max_Tx_Rate": null}),
        );
        assert!(s.vlan.is_some() && s.spoofchk.is_some());
        assert!(s.trust.is_none() && s.rate.is_none());
    }

    /// Issue 12 item 11: DEL's parse never rejects a value, only what the
    /// Go library rejects for every command.
    #[test]
    fn lenient_parse_for_del() {
        let c = NetConf::parse_lenient(
            br#"{"cniVersion":"1.0.0","name":"n","type":"sriov","vlan":5000,"mac":"zz","dataDir":"rel","ipam":{"type":"host-local"}}"#,
            None,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.ipam.unwrap().kind, "host-local");
        // GC's list survives a config ADD would refuse.
        let c = NetConf::parse_lenient(
            br#"{"cniVersion":"1.1.0","name":"n","type":"sriov","vlan":5000,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"net1"}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "a");
        assert_eq!(
            NetConf::parse_lenient(b"nope", None).unwrap_err().code,
            Code::Decode
        );
        assert_eq!(
            NetConf::parse_lenient(br#"{"cniVersion":"9.9.9"}"#, None)
                .unwrap_err()
                .code,
            Code::IncompatibleVersion
        );
        // A valid config reads exactly as for ADD.
        let b = format!("{{{BASE},\"vlan\":5}}");
        assert_eq!(
            NetConf::parse_lenient(b.as_bytes(), None).unwrap(),
            NetConf::parse(b.as_bytes(), None).unwrap()
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
