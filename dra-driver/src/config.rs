//! Per-claim VF configuration: the upstream SR-IOV DRA driver's opaque
//! `VfConfig` parameters (`sriovnetwork.k8snetworkplumbingwg.io/v1alpha1`,
//! kind `VfConfig`), read from a ResourceClaim's
//! `status.allocation.devices.config[]`.
//!
//! ```yaml
//! config:
//! - requests: ["vf"]            # empty or absent: every request
//!   opaque:
//!     driver: sriovnetwork.k8snetworkplumbingwg.io
//!     parameters:
//!       apiVersion: sriovnetwork.k8snetworkplumbingwg.io/v1alpha1
//!       kind: VfConfig
//!       driver: vfio-pci        # "" leave as bound, "default", or a driver name
//!       ifName: net1
//!       netAttachDefName: vf-test
//!       netAttachDefNamespace: other   # default: the claim's namespace
//!       addVhostMount: true
//! ```
//!
//! Precedence is upstream's: the entries from the DeviceClass
//! (`source: FromClass`) first, then the claim's (`FromClaim`), each in
//! list order; a later entry's non-empty fields override earlier ones
//! (`addVhostMount` only turns on). Entries of other drivers are skipped;
//! an entry with no `opaque` is an error, as upstream. Parameters are
//! decoded strictly, as upstream's decoder does: another `apiVersion` or
//! `kind`, an unknown field or a wrong type is an error naming the entry.
//!
//! Differences from upstream, all where upstream is inconsistent with the
//! API: an entry with no `requests` applies to every request (the
//! `resource.k8s.io` meaning; upstream applies it to none), a request
//! name also matches its subrequests (`vf` matches `vf/fast`), and
//! `netAttachDefNamespace` and `addVhostMount` survive the merge (upstream's
//! `Override` drops both).

use serde::{Deserialize, Serialize};

/// The `apiVersion` of the parameters.
pub const API_VERSION: &str = "sriovnetwork.k8snetworkplumbingwg.io/v1alpha1";
/// The `kind` of the parameters.
pub const KIND: &str = "VfConfig";
/// `driver` value that gives the VF back to its default kernel driver.
pub const DEFAULT_DRIVER: &str = "default";
/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// The configuration applied to one allocated VF (the merge of every
/// matching entry). All fields empty: prepare exposes the VF as it is bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VfConfig {
    /// `""` (leave the VF on its driver), `"default"` (its default kernel
    /// driver) or a PCI driver name such as `vfio-pci`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Add `/dev/vhost-net` and `/dev/net/tun` to the container.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub add_vhost_mount: bool,
    /// The interface name in the pod (for the network attachment).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub if_name: String,
    /// The NetworkAttachmentDefinition of the VF's network.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub net_attach_def_name: String,
    /// Its namespace; default the claim's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub net_attach_def_namespace: String,
}

/// The parameters object as written: `VfConfig` plus its type meta; no
/// other field is allowed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Parameters {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    add_vhost_mount: bool,
    #[serde(default)]
    if_name: String,
    #[serde(default)]
    net_attach_def_name: String,
    #[serde(default)]
    net_attach_def_namespace: String,
}

/// What `driver` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverRequest<'a> {
    /// Leave the VF on the driver it is bound to.
    Unchanged,
    /// Give it back to its default kernel driver (off a userspace driver
    /// or a `driver_override`).
    Default,
    /// Bind it to this driver.
    Named(&'a str),
}

impl VfConfig {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        *self == VfConfig::default()
    }

    /// What `driver` asks for.
    pub fn driver_request(&self) -> DriverRequest<'_> {
        match self.driver.as_str() {
            "" => DriverRequest::Unchanged,
            DEFAULT_DRIVER => DriverRequest::Default,
            d => DriverRequest::Named(d),
        }
    }

    /// Upstream's `Override`: `other`'s non-empty fields win.
    pub fn override_with(&mut self, other: &VfConfig) {
        for (mine, theirs) in [
            (&mut self.driver, &other.driver),
            (&mut self.if_name, &other.if_name),
            (&mut self.net_attach_def_name, &other.net_attach_def_name),
            (
                &mut self.net_attach_def_namespace,
                &other.net_attach_def_namespace,
            ),
        ] {
            if !theirs.is_empty() {
                mine.clone_from(theirs);
            }
        }
        self.add_vhost_mount |= other.add_vhost_mount;
    }

    /// Decodes and checks one entry's `opaque.parameters`.
    pub fn parse(parameters: &serde_json::Value) -> Result<Self, String> {
        let p: Parameters =
            serde_json::from_value(parameters.clone()).map_err(|e| e.to_string())?;
        match (p.api_version.as_deref(), p.kind.as_deref()) {
            (Some(API_VERSION), Some(KIND)) => {}
            (v, k) => {
                return Err(format!(
                    "apiVersion {:?}, kind {:?}: only {API_VERSION} {KIND} is understood",
                    v.unwrap_or_default(),
                    k.unwrap_or_default()
                ));
            }
        }
        let c = VfConfig {
            driver: p.driver,
            add_vhost_mount: p.add_vhost_mount,
            if_name: p.if_name,
            net_attach_def_name: p.net_attach_def_name,
            net_attach_def_namespace: p.net_attach_def_namespace,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the values (each field on its own; empty is always valid).
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.driver;
        if !d.is_empty()
            && (d.len() > 64
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                || d.starts_with('.'))
        {
            return Err(format!(
                "driver {d:?}: not a PCI driver name (\"\", \"{DEFAULT_DRIVER}\", or a name such as vfio-pci)"
            ));
        }
        let n = &self.if_name;
        if !n.is_empty()
            && (n.len() > MAX_IFNAME_LEN
                || n == "."
                || n == ".."
                || n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()))
        {
            return Err(format!(
                "ifName {n:?}: not a Linux interface name (at most {MAX_IFNAME_LEN} bytes, no '/', ':' or space)"
            ));
        }
        if !self.net_attach_def_name.is_empty() && !dns_subdomain(&self.net_attach_def_name) {
            return Err(format!(
                "netAttachDefName {:?}: not an object name (lower-case DNS subdomain)",
                self.net_attach_def_name
            ));
        }
        if !self.net_attach_def_namespace.is_empty() && !dns_label(&self.net_attach_def_namespace) {
            return Err(format!(
                "netAttachDefNamespace {:?}: not a namespace name (lower-case DNS label)",
                self.net_attach_def_namespace
            ));
        }
        Ok(())
    }
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// Whether a config entry's `requests` list applies to the result of
/// request `request` (`req` or `req/subrequest`).
pub fn applies_to(requests: &[String], request: &str) -> bool {
    requests.is_empty()
        || requests.iter().any(|r| {
            r == request
                || request
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// One entry of `status.allocation.devices.config[]` for this driver,
/// decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub requests: Vec<String>,
    pub config: VfConfig,
}

/// This driver's entries of `status.allocation.devices.config` (JSON; may
/// be absent), in order of precedence (lowest first): class entries, then
/// claim entries. Errors name the entry (`config[2]`).
pub fn entries(config: &serde_json::Value, driver: &str) -> Result<Vec<ConfigEntry>, String> {
    let list = match config {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(a) => a,
        _ => return Err("status.allocation.devices.config is not a list".into()),
    };
    let mut class = Vec::new();
    let mut claim = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let at = format!("status.allocation.devices.config[{i}]");
        let target = match e["source"].as_str() {
            Some("FromClass") => &mut class,
            Some("FromClaim") => &mut claim,
            s => return Err(format!("{at}: invalid source {s:?}")),
        };
        let Some(opaque) = e.get("opaque").filter(|o| !o.is_null()) else {
            return Err(format!(
                "{at}: only opaque parameters are supported by this driver"
            ));
        };
        if opaque["driver"].as_str() != Some(driver) {
            continue;
        }
        let config = VfConfig::parse(&opaque["parameters"])
            .map_err(|e| format!("{at}: {API_VERSION} {KIND} parameters: {e}"))?;
        let requests = match &e["requests"] {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{at}: requests is not a list of names"))?,
            _ => return Err(format!("{at}: requests is not a list of names")),
        };
        target.push(ConfigEntry { requests, config });
    }
    class.extend(claim);
    Ok(class)
}

/// The configuration of the result of `request`: every entry that applies,
/// merged in order.
pub fn for_request(entries: &[ConfigEntry], request: &str) -> VfConfig {
    let mut c = VfConfig::default();
    for e in entries.iter().filter(|e| applies_to(&e.requests, request)) {
        c.override_with(&e.config);
    }
    c
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DRV: &str = "sriovnetwork.k8snetworkplumbingwg.io";

    fn opaque(
        source: &str,
        requests: Option<&[&str]>,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let mut e = json!({"source": source, "opaque": {"driver": DRV, "parameters": params}});
        if let Some(r) = requests {
            e["requests"] = json!(r);
        }
        e
    }

    fn vf(fields: serde_json::Value) -> serde_json::Value {
        let mut p = json!({"apiVersion": API_VERSION, "kind": KIND});
        for (k, v) in fields.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    #[test]
    fn parses_upstream_demo_parameters() {
        // demo/vfio-driver/vfio-driver-config.yaml of the upstream driver.
        let c = VfConfig::parse(&vf(json!({
            "ifName": "net1", "netAttachDefName": "vf-test",
            "driver": "vfio-pci", "addVhostMount": true
        })))
        .unwrap();
        assert_eq!(
            c,
            VfConfig {
                driver: "vfio-pci".into(),
                add_vhost_mount: true,
                if_name: "net1".into(),
                net_attach_def_name: "vf-test".into(),
                net_attach_def_namespace: String::new(),
            }
        );
        assert_eq!(c.driver_request(), DriverRequest::Named("vfio-pci"));
        let d = VfConfig::parse(&vf(json!({"driver": "default"}))).unwrap();
        assert_eq!(d.driver_request(), DriverRequest::Default);
        assert_eq!(
            VfConfig::parse(&vf(json!({}))).unwrap().driver_request(),
            DriverRequest::Unchanged
        );
    }

    #[test]
    fn rejects_other_kinds_unknown_fields_and_bad_values() {
        let e =
            VfConfig::parse(&json!({"apiVersion": API_VERSION, "kind": "GpuConfig"})).unwrap_err();
        assert!(
            e.contains("kind \"GpuConfig\"") && e.contains("VfConfig"),
            "{e}"
        );
        let e = VfConfig::parse(&json!({"apiVersion": "x/v1", "kind": KIND})).unwrap_err();
        assert!(e.contains("apiVersion \"x/v1\""), "{e}");
        let e = VfConfig::parse(&json!({"kind": KIND})).unwrap_err();
        assert!(e.contains("apiVersion \"\""), "{e}");
        let e = VfConfig::parse(&vf(json!({"ifname": "net1"}))).unwrap_err();
        assert!(e.contains("unknown field `ifname`"), "{e}");
        let e = VfConfig::parse(&vf(json!({"addVhostMount": "yes"}))).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = VfConfig::parse(&vf(json!({"driver": "../x"}))).unwrap_err();
        assert!(e.starts_with("driver \"../x\""), "{e}");
        let e = VfConfig::parse(&vf(json!({"ifName": "a-very-long-name0"}))).unwrap_err();
        assert!(e.starts_with("ifName"), "{e}");
        let e = VfConfig::parse(&vf(json!({"ifName": "a/b"}))).unwrap_err();
        assert!(e.starts_with("ifName"), "{e}");
        let e = VfConfig::parse(&vf(json!({"netAttachDefName": "Net_1"}))).unwrap_err();
        assert!(e.starts_with("netAttachDefName"), "{e}");
        let e = VfConfig::parse(&vf(json!({"netAttachDefNamespace": "a.b"}))).unwrap_err();
        assert!(e.starts_with("netAttachDefNamespace"), "{e}");
        assert!(
            VfConfig::parse(&vf(
                json!({"netAttachDefName": "net.a-1", "ifName": "net1"})
            ))
            .is_ok()
        );
    }

    #[test]
    fn class_then_claim_later_wins_per_request() {
        let config = json!([
            // Claim entries listed first still come after the class's.
            opaque("FromClaim", Some(&["vf"]), vf(json!({"driver": "vfio-pci", "ifName": "net1"}))),
            opaque("FromClass", Some(&["vf"]), vf(json!({"driver": "default", "netAttachDefName": "a"}))),
            opaque("FromClass", Some(&["vf", "other"]), vf(json!({"netAttachDefName": "b", "addVhostMount": true}))),
            opaque("FromClaim", Some(&["vf"]), vf(json!({"ifName": "net2"}))),
            // Another driver's entry, with parameters we could not read.
            {"source": "FromClaim", "opaque": {"driver": "gpu.example.com", "parameters": {"kind": "GpuConfig"}}},
        ]);
        let e = entries(&config, DRV).unwrap();
        assert_eq!(e.len(), 4);
        let c = for_request(&e, "vf");
        assert_eq!(c.driver, "vfio-pci");
        assert_eq!(c.if_name, "net2");
        assert_eq!(c.net_attach_def_name, "b");
        assert!(c.add_vhost_mount);
        let o = for_request(&e, "other");
        assert_eq!(
            o,
            VfConfig {
                net_attach_def_name: "b".into(),
                add_vhost_mount: true,
                ..Default::default()
            }
        );
        assert!(for_request(&e, "third").is_empty());
    }

    #[test]
    fn no_requests_means_every_request_and_subrequests_match() {
        let config = json!([
            opaque("FromClaim", None, vf(json!({"ifName": "all"}))),
            opaque(
                "FromClaim",
                Some(&["vf"]),
                vf(json!({"driver": "vfio-pci"}))
            ),
            opaque(
                "FromClaim",
                Some(&["vf/slow"]),
                vf(json!({"driver": "default"}))
            ),
        ]);
        let e = entries(&config, DRV).unwrap();
        assert_eq!(for_request(&e, "x").if_name, "all");
        assert_eq!(for_request(&e, "vf/fast").driver, "vfio-pci");
        assert_eq!(for_request(&e, "vf/slow").driver, "default");
        assert_eq!(for_request(&e, "vfx").driver, "");
        assert!(!applies_to(&["vf".into()], "vfx/a"));
    }

    #[test]
    fn entry_errors_name_the_entry() {
        assert!(entries(&serde_json::Value::Null, DRV).unwrap().is_empty());
        let e = entries(&json!([{"source": "FromClaim"}]), DRV).unwrap_err();
        assert_eq!(
            e,
            "status.allocation.devices.config[0]: only opaque parameters are supported by this driver"
        );
        let e = entries(&json!([{"source": "Elsewhere", "opaque": {}}]), DRV).unwrap_err();
        assert!(
            e.contains("config[0]: invalid source Some(\"Elsewhere\")"),
            "{e}"
        );
        let e = entries(
            &json!([
                opaque("FromClass", None, vf(json!({}))),
                opaque(
                    "FromClaim",
                    None,
                    json!({"apiVersion": API_VERSION, "kind": "Nope"})
                ),
            ]),
            DRV,
        )
        .unwrap_err();
        assert!(
            e.starts_with("status.allocation.devices.config[1]: "),
            "{e}"
        );
        assert!(e.contains("kind \"Nope\""), "{e}");
    }

    #[test]
    fn serializes_like_upstream() {
        let c = VfConfig {
            driver: "vfio-pci".into(),
            if_name: "net1".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"driver": "vfio-pci", "ifName": "net1"})
        );
        let back: VfConfig =
            serde_json::from_value(json!({"driver": "vfio-pci", "ifName": "net1"})).unwrap();
        assert_eq!(back, c);
    }
}
