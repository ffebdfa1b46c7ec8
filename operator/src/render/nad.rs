//! SriovNetwork / SriovIBNetwork / OVSNetwork → NetworkAttachmentDefinition,
//! exactly as the Go operator renders it (`RenderNetAttDef` with the
//! `cni-config/sriov` or `cni-config/ovs` template, then `formatJSON`).
//!
//! Upstream fills a Go template that is a YAML single-quoted string, parses
//! the YAML (which folds line breaks into spaces and trims each line) and
//! re-indents the JSON with `json.Indent(…, "", "    ")`. The same three
//! steps are done here, so user-supplied `capabilities` and `metaPlugins`
//! text comes out byte-identical, line folding included.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use sriov_crds::{OVSNetwork, SriovIBNetwork, SriovNetwork};

use crate::nad::{
    NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec, OWNER_REF_ANNOTATION,
    RESOURCE_NAME_ANNOTATION,
};
use crate::settings::Settings;

/// `Ready` reason: the NAD is in place.
pub const REASON_NETWORK_READY: &str = "NetworkReady";
/// `Ready` reason: reading the NAD failed.
pub const REASON_NAD_NOT_FOUND: &str = "NetworkAttachmentDefinitionNotFound";
/// `Ready` reason: the CR or its rendering is not valid, or the NAD belongs to another owner.
pub const REASON_NAD_INVALID: &str = "NetworkAttachmentDefinitionInvalid";
/// `Ready` reason: the target namespace does not exist (yet).
pub const REASON_NAMESPACE_NOT_FOUND: &str = "NamespaceNotFound";
/// `Ready` message when the NAD is in place.
pub const READY_MESSAGE: &str = "NetworkAttachmentDefinition is provisioned and ready";

/// The fields of either network kind the renderer needs.
#[derive(Debug, Clone, Default)]
pub struct NetworkView {
    /// `SriovNetwork`, `SriovIBNetwork` or `OVSNetwork`.
    pub kind: &'static str,
    /// CR name (and NAD name).
    pub name: String,
    /// CR namespace.
    pub namespace: String,
    /// CR uid (for the ownerReference).
    pub uid: Option<String>,
    /// `spec.networkNamespace`.
    pub network_namespace: String,
    /// `spec.resourceName`.
    pub resource_name: String,
    /// The template variables of the CNI config.
    pub cni: CniFields,
}

/// Values for the CNI config template.
#[derive(Debug, Clone, Default)]
pub struct CniFields {
    /// `sriov`, `ib-sriov` or `ovs`.
    pub cni_type: &'static str,
    /// `bridge` (ovs; emitted when set).
    pub bridge: String,
    /// `vlan` of the OVS port (ovs; emitted when not 0, Go's `uint`).
    pub ovs_vlan: i64,
    /// `mtu` (ovs; emitted when not 0).
    pub mtu: i64,
    /// `trunk` as Go's `json.Marshal` writes it (ovs; emitted when set).
    pub trunk: String,
    /// `interface_type` (ovs; emitted when set).
    pub interface_type: String,
    /// `vlan` (sriov only; always emitted).
    pub vlan: i32,
    /// `vlanQoS` (sriov only; emitted when 0-7).
    pub vlan_qos: i32,
    /// `vlanProto`.
    pub vlan_proto: String,
    /// `spoofchk` (`on`/`off`, else left out).
    pub spoof_chk: String,
    /// `trust` (`on`/`off`, else left out).
    pub trust: String,
    /// `min_tx_rate`.
    pub min_tx_rate: Option<i32>,
    /// `max_tx_rate`.
    pub max_tx_rate: Option<i32>,
    /// `capabilities` (raw JSON).
    pub capabilities: String,
    /// `link_state` (`auto`/`enable`/`disable`, else left out).
    pub link_state: String,
    /// `logLevel`.
    pub log_level: String,
    /// `logFile`.
    pub log_file: String,
    /// `ipam` (raw JSON; whitespace removed).
    pub ipam: String,
    /// `metaPlugins` (raw JSON, one or more plugin objects).
    pub meta_plugins: String,
}

impl NetworkView {
    /// From a `SriovNetwork`.
    pub fn sriov(n: &SriovNetwork) -> Self {
        let s = &n.spec;
        NetworkView {
            kind: "SriovNetwork",
            name: n.name_any(),
            namespace: n.namespace().unwrap_or_default(),
            uid: n.uid(),
            network_namespace: s.network_namespace.clone(),
            resource_name: s.resource_name.clone(),
            cni: CniFields {
                cni_type: "sriov",
                vlan: s.vlan.unwrap_or(0),
                vlan_qos: s.vlan_qos.unwrap_or(0),
                vlan_proto: s.vlan_proto.clone(),
                spoof_chk: s.spoof_chk.clone(),
                trust: s.trust.clone(),
                min_tx_rate: s.min_tx_rate,
                max_tx_rate: s.max_tx_rate,
                capabilities: s.capabilities.clone(),
                link_state: s.link_state.clone(),
                log_level: s.log_level.clone(),
                log_file: s.log_file.clone(),
                ipam: s.ipam.clone(),
                meta_plugins: s.meta_plugins.clone(),
                ..Default::default()
            },
        }
    }

    /// From a `SriovIBNetwork` (no VLAN fields; logLevel/logFile never emitted).
    pub fn ib(n: &SriovIBNetwork) -> Self {
        let s = &n.spec;
        NetworkView {
            kind: "SriovIBNetwork",
            name: n.name_any(),
            namespace: n.namespace().unwrap_or_default(),
            uid: n.uid(),
            network_namespace: s.network_namespace.clone(),
            resource_name: s.resource_name.clone(),
            cni: CniFields {
                cni_type: "ib-sriov",
                capabilities: s.capabilities.clone(),
                link_state: s.link_state.clone(),
                ipam: s.ipam.clone(),
                meta_plugins: s.meta_plugins.clone(),
                ..Default::default()
            },
        }
    }

    /// From an `OVSNetwork` (CNI type `ovs`: bridge, vlan, mtu, trunk,
    /// interface_type; no SR-IOV or log keys).
    pub fn ovs(n: &OVSNetwork) -> Self {
        let s = &n.spec;
        NetworkView {
            kind: "OVSNetwork",
            name: n.name_any(),
            namespace: n.namespace().unwrap_or_default(),
            uid: n.uid(),
            network_namespace: s.network_namespace.clone(),
            resource_name: s.resource_name.clone(),
            cni: CniFields {
                cni_type: "ovs",
                capabilities: s.capabilities.clone(),
                ipam: s.ipam.clone(),
                meta_plugins: s.meta_plugins.clone(),
                bridge: s.bridge.clone(),
                ovs_vlan: s.vlan.unwrap_or(0),
                mtu: s.mtu.unwrap_or(0),
                trunk: if s.trunk.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&s.trunk).expect("trunk entries serialize")
                },
                interface_type: s.interface_type.clone(),
                ..Default::default()
            },
        }
    }

    /// Namespace of the NAD: `spec.networkNamespace`, else the CR's own.
    pub fn target_namespace(&self) -> &str {
        if self.network_namespace.is_empty() {
            &self.namespace
        } else {
            &self.network_namespace
        }
    }

    /// The `owner-ref` annotation value: `<Kind>.sriovnetwork.openshift.io/<ns>/<name>`.
    pub fn owner_ref(&self) -> String {
        format!(
            "{}.{}/{}/{}",
            self.kind,
            sriov_crds::GROUP,
            self.namespace,
            self.name
        )
    }

    /// True when the NAD goes to another namespace than the CR's (finalizer
    /// and last-namespace annotation instead of an ownerReference).
    pub fn is_cross_namespace(&self) -> bool {
        self.target_namespace() != self.namespace
    }
}

/// Why a network cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NadError {
    /// `networkNamespace` set on a CR outside the operator namespace.
    #[error(
        "spec.networkNamespace cannot be set when the resource is not in the operator namespace ({0})"
    )]
    CrossNamespaceNotAllowed(String),
    /// The rendered CNI config is not JSON (bad ipam, capabilities or metaPlugins).
    #[error(
        "the rendered CNI config is not valid JSON ({0}); check ipam, capabilities and metaPlugins"
    )]
    InvalidJson(String),
}

/// The Go template's output, before YAML folding.
fn template(name: &str, c: &CniFields) -> String {
    let mut t = String::new();
    t.push_str("{\n  \"cniVersion\":\"1.0.0\",\n  \"name\":\"");
    t.push_str(name);
    t.push_str("\",");
    let meta = !c.meta_plugins.is_empty();
    if meta {
        t.push_str("\"plugins\": [\n    {");
    }
    t.push_str(&format!("\"type\":\"{}\",", c.cni_type));
    if c.cni_type == "ovs" {
        // cni-config/ovs: capabilities, bridge, vlan, mtu, trunk, interface_type.
        if !c.capabilities.is_empty() {
            t.push_str(&format!("\"capabilities\":{},", c.capabilities));
        }
        if !c.bridge.is_empty() {
            t.push_str(&format!("\"bridge\":\"{}\",", c.bridge));
        }
        if c.ovs_vlan != 0 {
            t.push_str(&format!("\"vlan\":{},", c.ovs_vlan));
        }
        if c.mtu != 0 {
            t.push_str(&format!("\"mtu\":{},", c.mtu));
        }
        if !c.trunk.is_empty() {
            t.push_str(&format!("\"trunk\":{},", c.trunk));
        }
        if !c.interface_type.is_empty() {
            t.push_str(&format!("\"interface_type\":\"{}\",", c.interface_type));
        }
        push_ipam_and_end(&mut t, c);
        return t;
    }
    if c.cni_type == "sriov" {
        t.push_str(&format!("\"vlan\":{},", c.vlan));
        if matches!(c.spoof_chk.as_str(), "on" | "off") {
            t.push_str(&format!("\"spoofchk\":\"{}\",", c.spoof_chk));
        }
        if matches!(c.trust.as_str(), "on" | "off") {
            t.push_str(&format!("\"trust\":\"{}\",", c.trust));
        }
        if (0..=7).contains(&c.vlan_qos) {
            t.push_str(&format!("\"vlanQoS\":{},", c.vlan_qos));
        }
        if !c.vlan_proto.is_empty() {
            t.push_str(&format!("\"vlanProto\":\"{}\",", c.vlan_proto));
        }
        if let Some(r) = c.min_tx_rate.filter(|r| *r >= 0) {
            t.push_str(&format!("\"min_tx_rate\":{r},"));
        }
        if let Some(r) = c.max_tx_rate.filter(|r| *r >= 0) {
            t.push_str(&format!("\"max_tx_rate\":{r},"));
        }
    }
    if !c.capabilities.is_empty() {
        t.push_str(&format!("\"capabilities\":{},", c.capabilities));
    }
    if matches!(c.link_state.as_str(), "auto" | "enable" | "disable") {
        t.push_str(&format!("\"link_state\":\"{}\",", c.link_state));
    }
    if c.cni_type == "sriov" {
        if !c.log_level.is_empty() {
            t.push_str(&format!("\"logLevel\":\"{}\",", c.log_level));
        }
        if !c.log_file.is_empty() {
            t.push_str(&format!("\"logFile\":\"{}\",", c.log_file));
        }
    }
    push_ipam_and_end(&mut t, c);
    t
}

/// The templates' common tail: `ipam` (whitespace removed, or `{}`), the
/// closing brace and the metaPlugins list.
fn push_ipam_and_end(t: &mut String, c: &CniFields) {
    if c.ipam.is_empty() {
        t.push_str("\"ipam\":{}");
    } else {
        let stripped: String = c.ipam.split_whitespace().collect();
        t.push_str("\"ipam\":");
        t.push_str(&stripped);
    }
    t.push_str("\n}");
    if !c.meta_plugins.is_empty() {
        t.push_str(",\n  ");
        t.push_str(&c.meta_plugins);
        t.push_str("\n  ]\n}");
    }
}

/// YAML single-quoted scalar folding: each line is trimmed (the first only at
/// its end, the last only at its start), a line break between two non-empty
/// lines becomes one space, and each empty line becomes a `\n`.
pub fn yaml_fold(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.len() == 1 {
        return text.to_string();
    }
    let ws: &[char] = &[' ', '\t'];
    let last = lines.len() - 1;
    let mut out = String::with_capacity(text.len());
    out.push_str(lines[0].trim_end_matches(ws));
    let mut empty = 0usize;
    for (i, line) in lines.iter().enumerate().skip(1) {
        let l = if i == last {
            line.trim_start_matches(ws)
        } else {
            line.trim_matches(ws)
        };
        if l.is_empty() && i != last {
            empty += 1;
            continue;
        }
        if empty > 0 {
            out.extend(std::iter::repeat_n('\n', empty));
        } else {
            out.push(' ');
        }
        empty = 0;
        out.push_str(l);
    }
    out
}

/// Go's `json.Indent(dst, src, "", "    ")`: string and number literals are
/// kept as written, `{}`/`[]` stay compact, `": "` after keys, no trailing
/// newline. The input must be valid JSON (checked first, as Go does).
pub fn go_json_indent(src: &str) -> Result<String, NadError> {
    serde_json::from_str::<serde::de::IgnoredAny>(src)
        .map_err(|e| NadError::InvalidJson(e.to_string()))?;
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut need_indent = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    out.push(s);
                    if s == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The CNI config text of the NAD (`spec.config`), as upstream writes it.
pub fn render_cni_config(name: &str, cni: &CniFields) -> Result<String, NadError> {
    go_json_indent(&yaml_fold(&template(name, cni)))
}

/// Renders the NAD of a network CR. `operator_namespace` is checked: only CRs
/// there may set `networkNamespace`.
pub fn render_nad(
    net: &NetworkView,
    settings: &Settings,
) -> Result<NetworkAttachmentDefinition, NadError> {
    if !net.network_namespace.is_empty() && net.namespace != settings.namespace {
        return Err(NadError::CrossNamespaceNotAllowed(
            settings.namespace.clone(),
        ));
    }
    let config = render_cni_config(&net.name, &net.cni)?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        RESOURCE_NAME_ANNOTATION.to_string(),
        format!("{}/{}", settings.resource_prefix, net.resource_name),
    );
    annotations.insert(OWNER_REF_ANNOTATION.to_string(), net.owner_ref());
    let owner_references = (!net.is_cross_namespace())
        .then(|| {
            net.uid.clone().map(|uid| {
                vec![OwnerReference {
                    api_version: sriov_crds::API_VERSION.to_string(),
                    kind: net.kind.to_string(),
                    name: net.name.clone(),
                    uid,
                    controller: None,
                    block_owner_deletion: None,
                }]
            })
        })
        .flatten();
    let mut nad =
        NetworkAttachmentDefinition::new(&net.name, NetworkAttachmentDefinitionSpec { config });
    nad.metadata = ObjectMeta {
        name: Some(net.name.clone()),
        namespace: Some(net.target_namespace().to_string()),
        annotations: Some(annotations),
        owner_references,
        ..Default::default()
    };
    Ok(nad)
}

/// apiVersion and kind of a NAD, for output.
pub fn nad_type_meta() -> (String, String) {
    (
        NetworkAttachmentDefinition::api_version(&()).to_string(),
        NetworkAttachmentDefinition::kind(&()).to_string(),
    )
}
