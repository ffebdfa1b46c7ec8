//! CNI errors: every failure of the plugin carries a code from one table
//! ([`Code`]) and is printed on stdout as the spec's error JSON
//! (`{"cniVersion","code","msg","details"}`).
//!
//! Codes 1–99 are the CNI spec's; codes >= 100 are this plugin's own and
//! are listed in `docs/cni.md`.

use serde::Serialize;

/// An error code. Codes below 100 are the CNI spec's well-known codes; codes
/// from 100 on are this plugin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    /// 1: the config's `cniVersion` is not supported.
    IncompatibleVersion = 1,
    /// 2: a config field is not supported.
    UnsupportedField = 2,
    /// 3: the container does not exist or is unknown.
    UnknownContainer = 3,
    /// 4: an environment variable is missing or invalid.
    InvalidEnv = 4,
    /// 5: an I/O failure (state files, stdin).
    Io = 5,
    /// 6: the config or a result could not be decoded.
    Decode = 6,
    /// 7: the config is invalid.
    InvalidConfig = 7,
    /// 11: try again later (a transient condition).
    TryAgain = 11,
    /// 50: the plugin is not available (STATUS).
    NotAvailable = 50,
    /// 51: the plugin is available with limited connectivity (STATUS).
    LimitedConnectivity = 51,
    /// 100: the `deviceID` is not an SR-IOV VF (a PF, a non-SR-IOV device).
    NotAVf = 100,
    /// 101: the VF is allocated to another live attachment.
    VfInUse = 101,
    /// 102: the PCI device does not exist on the node.
    DeviceNotFound = 102,
    /// 103: the VF has no network interface in the host network namespace.
    VfNetdevMissing = 103,
    /// 104: the PF's driver does not support a requested VF setting.
    VfSettingUnsupported = 104,
    /// 105: a netlink operation (link move, rename, MAC, MTU, VF setting) failed.
    Netlink = 105,
    /// 106: a network namespace could not be opened or entered.
    Netns = 106,
    /// 107: the IPAM plugin failed or could not be run.
    Ipam = 107,
    /// 108: configuring addresses or routes in the pod failed.
    Addressing = 108,
    /// 109: the plugin's saved state is unreadable or inconsistent.
    State = 109,
    /// 110: CHECK found the attachment differs from what ADD set up.
    CheckFailed = 110,
    /// 111: reading the node's sysfs failed.
    Sysfs = 111,
}

impl Code {
    /// The numeric code.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// A CNI error: code, one-line message, details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    /// The code.
    pub code: Code,
    /// What failed.
    pub msg: String,
    /// Why, and what to do.
    pub details: String,
}

impl CniError {
    /// A new error.
    pub fn new(code: Code, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Invalid configuration (code 7).
    pub fn config(msg: impl Into<String>) -> CniError {
        CniError::new(Code::InvalidConfig, msg, "")
    }

    /// Invalid environment (code 4).
    pub fn env(msg: impl Into<String>) -> CniError {
        CniError::new(Code::InvalidEnv, msg, "")
    }

    /// An error from a netlink operation: code 104 when the driver said
    /// EOPNOTSUPP for a VF setting, else 105.
    pub fn netlink(msg: impl Into<String>, e: &sriov_host::netlink::NetlinkError) -> CniError {
        let code = if e.is_not_supported() {
            Code::VfSettingUnsupported
        } else {
            Code::Netlink
        };
        CniError::new(code, msg, e.to_string())
    }

    /// The spec's error JSON for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        serde_json::to_string(&Out {
            cni_version,
            code: self.code.as_u32(),
            msg: &self.msg,
            details: &self.details,
        })
        .expect("error JSON serializes")
    }

    /// Prefixes the message with context.
    pub fn context(mut self, what: impl std::fmt::Display) -> CniError {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

/// Result with [`CniError`].
pub type Result<T, E = CniError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_spec_fields() {
        let e = CniError::new(Code::VfInUse, "VF 0000:3b:02.0 is in use", "by netns /x");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["code"], 101);
        assert_eq!(v["msg"], "VF 0000:3b:02.0 is in use");
        assert_eq!(v["details"], "by netns /x");
        let e = CniError::config("bad");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.1.0")).unwrap();
        assert_eq!(v["code"], 7);
        assert!(v.get("details").is_none());
    }

    #[test]
    fn codes_are_the_spec_values() {
        assert_eq!(Code::IncompatibleVersion.as_u32(), 1);
        assert_eq!(Code::InvalidEnv.as_u32(), 4);
        assert_eq!(Code::InvalidConfig.as_u32(), 7);
        assert_eq!(Code::TryAgain.as_u32(), 11);
        assert_eq!(Code::NotAvailable.as_u32(), 50);
        assert!(Code::NotAVf.as_u32() >= 100);
    }
}
