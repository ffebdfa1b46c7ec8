//! CNI results: one internal form, printed in the shape of the config's
//! `cniVersion` (0.3.x/0.4.0 carry `"version"` on each IP; 1.x do not), and
//! read back from an IPAM plugin's answer in any of those shapes.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::parse_cidr;
use crate::error::{CniError, Code, Result};

/// An interface in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU (spec 1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path, for interfaces inside the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    /// PCI address of the device (spec 1.1.0 `pciID`).
    #[serde(rename = "pciID", default, skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
}

/// An IP address in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: IpAddr,
    /// Destination prefix length.
    pub dst_prefix: u8,
    /// Gateway, when given.
    pub gw: Option<IpAddr>,
}

/// DNS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dns {
    /// Nameservers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// A CNI result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CniResult {
    /// Interfaces.
    pub interfaces: Vec<Interface>,
    /// IPs.
    pub ips: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
    /// DNS.
    pub dns: Dns,
}

fn decode_err(what: &str, detail: impl std::fmt::Display) -> CniError {
    CniError::new(
        Code::Decode,
        format!("cannot decode {what}"),
        detail.to_string(),
    )
}

impl CniResult {
    /// Reads a result (e.g. an IPAM plugin's) in the 0.3.x–1.1.0 shape.
    pub fn parse(bytes: &[u8], what: &str) -> Result<CniResult> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| decode_err(what, e))?;
        let mut out = CniResult::default();
        if let Some(ifs) = v.get("interfaces") {
            out.interfaces =
                serde_json::from_value(ifs.clone()).map_err(|e| decode_err(what, e))?;
        }
        if let Some(Value::Array(ips)) = v.get("ips") {
            for ip in ips {
                let addr = ip
                    .get("address")
                    .and_then(Value::as_str)
                    .ok_or_else(|| decode_err(what, "an ips entry has no address"))?;
                let (address, prefix) = parse_cidr(addr).map_err(|e| decode_err(what, e))?;
                let gateway = match ip.get("gateway").and_then(Value::as_str) {
                    None | Some("") => None,
                    Some(g) => Some(
                        g.parse()
                            .map_err(|_| decode_err(what, format!("bad gateway {g:?}")))?,
                    ),
                };
                let interface = ip
                    .get("interface")
                    .and_then(Value::as_u64)
                    .map(|i| i as usize);
                out.ips.push(IpConfig {
                    address,
                    prefix,
                    gateway,
                    interface,
                });
            }
        }
        if let Some(Value::Array(routes)) = v.get("routes") {
            for r in routes {
                let dst = r
                    .get("dst")
                    .and_then(Value::as_str)
                    .ok_or_else(|| decode_err(what, "a route has no dst"))?;
                let (dst, dst_prefix) = parse_cidr(dst).map_err(|e| decode_err(what, e))?;
                let gw = match r.get("gw").and_then(Value::as_str) {
                    None | Some("") => None,
                    Some(g) => Some(
                        g.parse()
                            .map_err(|_| decode_err(what, format!("bad gw {g:?}")))?,
                    ),
                };
                out.routes.push(Route {
                    dst,
                    dst_prefix,
                    gw,
                });
            }
        }
        if let Some(d) = v.get("dns") {
            out.dns = serde_json::from_value(d.clone()).map_err(|e| decode_err(what, e))?;
        }
        // The 0.1.0/0.2.0 shape (an IPAM plugin answering a config without
        // cniVersion): `ip4`/`ip6` with `ip`, `gateway`, `routes`.
        for key in ["ip4", "ip6"] {
            let Some(c) = v.get(key).filter(|c| c.is_object()) else {
                continue;
            };
            let ip = c
                .get("ip")
                .and_then(Value::as_str)
                .ok_or_else(|| decode_err(what, format!("{key} has no ip")))?;
            let (address, prefix) = parse_cidr(ip).map_err(|e| decode_err(what, e))?;
            let gateway = match c.get("gateway").and_then(Value::as_str) {
                None | Some("") => None,
                Some(g) => Some(
                    g.parse()
                        .map_err(|_| decode_err(what, format!("bad gateway {g:?}")))?,
                ),
            };
            out.ips.push(IpConfig {
                address,
                prefix,
                gateway,
                interface: None,
            });
            let legacy = CniResult::parse(
                json!({ "routes": c.get("routes").cloned().unwrap_or(json!([])) })
                    .to_string()
                    .as_bytes(),
                what,
            )?;
            out.routes.extend(legacy.routes);
        }
        Ok(out)
    }

    /// The result as JSON for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> Value {
        if matches!(cni_version, "0.1.0" | "0.2.0") {
            return self.to_legacy_json(cni_version);
        }
        let with_version = cni_version.starts_with("0.");
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = json!({ "address": format!("{}/{}", ip.address, ip.prefix) });
                if with_version {
                    o["version"] = json!(if ip.address.is_ipv4() { "4" } else { "6" });
                }
                if let Some(g) = ip.gateway {
                    o["gateway"] = json!(g.to_string());
                }
                if let Some(i) = ip.interface {
                    o["interface"] = json!(i);
                }
                o
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut o = json!({ "dst": format!("{}/{}", r.dst, r.dst_prefix) });
                if let Some(g) = r.gw {
                    o["gw"] = json!(g.to_string());
                }
                o
            })
            .collect();
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if cni_version.starts_with("0.") {
                    // `mtu` and `pciID` are not in the 0.x schemas; the Go
                    // library prints `mtu` for 1.0.0 and 1.1.0 alike.
                    i.mtu = None;
                    i.pci_id.clear();
                }
                serde_json::to_value(i).expect("interface serializes")
            })
            .collect();
        let mut o = json!({ "cniVersion": cni_version });
        if !interfaces.is_empty() {
            o["interfaces"] = json!(interfaces);
        }
        if !ips.is_empty() {
            o["ips"] = json!(ips);
        }
        if !routes.is_empty() {
            o["routes"] = json!(routes);
        }
        if !self.dns.is_empty() || cni_version.starts_with("0.") {
            o["dns"] = serde_json::to_value(&self.dns).expect("dns serializes");
        }
        o
    }
}

impl CniResult {
    /// The 0.1.0/0.2.0 shape, converted as the Go library converts: the
    /// first address of each family as `ip4`/`ip6` with its gateway, the
    /// routes of each family under it, `dns`; no interfaces. Where the Go
    /// library refuses a result without addresses ("cannot convert: no
    /// valid IP addresses", after the VF was set up), this prints one
    /// without `ip4`/`ip6`.
    fn to_legacy_json(&self, cni_version: &str) -> Value {
        let mut o = json!({ "cniVersion": cni_version });
        for (key, v4) in [("ip4", true), ("ip6", false)] {
            let Some(ip) = self.ips.iter().find(|i| i.address.is_ipv4() == v4) else {
                continue;
            };
            let mut c = json!({ "ip": format!("{}/{}", ip.address, ip.prefix) });
            if let Some(g) = ip.gateway {
                c["gateway"] = json!(g.to_string());
            }
            let routes: Vec<Value> = self
                .routes
                .iter()
                .filter(|r| r.dst.is_ipv4() == v4)
                .map(|r| {
                    let mut o = json!({ "dst": format!("{}/{}", r.dst, r.dst_prefix) });
                    if let Some(g) = r.gw {
                        o["gw"] = json!(g.to_string());
                    }
                    o
                })
                .collect();
            if !routes.is_empty() {
                c["routes"] = json!(routes);
            }
            o[key] = c;
        }
        o["dns"] = serde_json::to_value(&self.dns).expect("dns serializes");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_LOCAL_100: &str = r#"{
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.1.0.2/24", "gateway": "10.1.0.1"},
                {"address": "fd00::2/64"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.0.254"}],
        "dns": {"nameservers": ["10.1.0.53"]}
    }"#;

    const HOST_LOCAL_040: &str = r#"{
        "cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "10.1.0.2/24", "gateway": "10.1.0.1"}],
        "dns": {}
    }"#;

    #[test]
    fn parse_ipam_results() {
        let r = CniResult::parse(HOST_LOCAL_100.as_bytes(), "IPAM result").unwrap();
        assert_eq!(r.ips.len(), 2);
        assert_eq!(r.ips[0].prefix, 24);
        assert_eq!(r.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(r.routes[1].gw, Some("10.1.0.254".parse().unwrap()));
        assert_eq!(r.dns.nameservers, vec!["10.1.0.53"]);
        let r = CniResult::parse(HOST_LOCAL_040.as_bytes(), "IPAM result").unwrap();
        assert_eq!(r.ips.len(), 1);
        assert!(CniResult::parse(b"{\"ips\":[{}]}", "x").is_err());
        assert!(CniResult::parse(b"nope", "x").is_err());
    }

    #[test]
    fn encode_per_version() {
        let mut r = CniResult::parse(HOST_LOCAL_100.as_bytes(), "x").unwrap();
        r.interfaces.push(Interface {
            name: "net1".into(),
            mac: "02:00:00:00:00:01".into(),
            mtu: Some(1500),
            sandbox: "/run/netns/x".into(),
            pci_id: "0000:3b:02.0".into(),
        });
        r.ips[0].interface = Some(0);
        let v1 = r.to_json("1.1.0");
        assert_eq!(v1["cniVersion"], "1.1.0");
        assert!(v1["ips"][0].get("version").is_none());
        assert_eq!(v1["ips"][0]["interface"], 0);
        assert_eq!(v1["interfaces"][0]["pciID"], "0000:3b:02.0");
        assert_eq!(v1["interfaces"][0]["mtu"], 1500);
        assert_eq!(v1["interfaces"][0]["sandbox"], "/run/netns/x");
        let v0 = r.to_json("0.4.0");
        assert_eq!(v0["ips"][0]["version"], "4");
        assert_eq!(v0["ips"][1]["version"], "6");
        assert!(v0["interfaces"][0].get("mtu").is_none());
        assert!(v0["interfaces"][0].get("pciID").is_none());
        // The Go library prints `mtu` for 1.0.0 as for 1.1.0 (one types100).
        let v10 = r.to_json("1.0.0");
        assert_eq!(v10["interfaces"][0]["mtu"], 1500);
        // round trip
        let back = CniResult::parse(v1.to_string().as_bytes(), "x").unwrap();
        assert_eq!(back, r);
    }

    /// Issue 12 item 12: a config without cniVersion (0.1.0) or with 0.2.0
    /// gets the legacy result shape, as the Go library converts it.
    #[test]
    fn legacy_result_shape() {
        let mut r = CniResult::parse(HOST_LOCAL_100.as_bytes(), "x").unwrap();
        r.interfaces.push(Interface {
            name: "net1".into(),
            ..Default::default()
        });
        let v = r.to_json("0.2.0");
        assert_eq!(v["cniVersion"], "0.2.0");
        assert_eq!(v["ip4"]["ip"], "10.1.0.2/24");
        assert_eq!(v["ip4"]["gateway"], "10.1.0.1");
        assert_eq!(v["ip4"]["routes"][1]["gw"], "10.1.0.254");
        assert_eq!(v["ip6"]["ip"], "fd00::2/64");
        assert_eq!(v["dns"]["nameservers"][0], "10.1.0.53");
        assert!(v.get("interfaces").is_none() && v.get("ips").is_none());
        // read back (an IPAM plugin's answer to a 0.2.0 config)
        let back = CniResult::parse(v.to_string().as_bytes(), "x").unwrap();
        assert_eq!(back.ips.len(), 2);
        assert_eq!(back.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(back.routes.len(), 2);
        let none = CniResult::default().to_json("0.1.0");
        assert_eq!(none, json!({"cniVersion": "0.1.0", "dns": {}}));
    }
}
