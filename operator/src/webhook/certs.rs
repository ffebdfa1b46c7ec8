//! Certificates of the webhooks: a self-signed CA and a serving certificate
//! for the webhook Service, kept in a Secret (`kubernetes.io/tls`: `tls.crt`,
//! `tls.key`, plus `ca.crt` and `ca.key`), renewed before they expire, and
//! the CA in the `caBundle` of the webhook configurations.
//!
//! The operator calls [`ensure_secret`] whenever it reconciles the webhooks
//! (`webhook::deploy`) and writes the CA into the configurations it renders.
//! The webhook pod mounts the Secret and reloads the files when the kubelet
//! updates them (`tls::watch`).
//!
//! cert-manager instead: annotate the Secret with
//! `cert-manager.io/certificate-name` (cert-manager owns it; [`ensure_secret`] leaves
//! it alone) and the webhook configurations with
//! `cert-manager.io/inject-ca-from: <ns>/<certificate>` (cert-manager's CA
//! injector sets `caBundle`; the operator renders none there).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{Span, Timestamp, ToSpan};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The Secret the manifests mount (`deploy/operator/webhooks.yaml`).
pub const SECRET_NAME: &str = "operator-webhook-cert";
/// Upstream's Service of the operator webhook.
pub const OPERATOR_WEBHOOK_SERVICE: &str = "operator-webhook-service";
/// Upstream's Service of the injector.
pub const INJECTOR_SERVICE: &str = "network-resources-injector-service";
/// Upstream's name of the operator webhook configurations (mutating and validating).
pub const OPERATOR_WEBHOOK_CONFIG: &str = "sriov-operator-webhook-config";
/// Upstream's name of the injector's MutatingWebhookConfiguration.
pub const INJECTOR_WEBHOOK_CONFIG: &str = "network-resources-injector-config";

/// Secret annotation: when the serving certificate expires (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "sriovnetwork.openshift.io/serving-cert-not-after";
/// Secret annotation: when the CA expires (RFC 3339).
pub const CA_NOT_AFTER_ANNOTATION: &str = "sriovnetwork.openshift.io/ca-not-after";
/// Secret annotation: the DNS names the serving certificate is for.
pub const DNS_NAMES_ANNOTATION: &str = "sriovnetwork.openshift.io/serving-cert-dns-names";
/// A Secret with this annotation is cert-manager's.
pub const CERT_MANAGER_SECRET_ANNOTATION: &str = "cert-manager.io/certificate-name";
/// A webhook configuration with this annotation gets its caBundle from cert-manager.
pub const CERT_MANAGER_INJECT_ANNOTATION: &str = "cert-manager.io/inject-ca-from";

/// Lifetimes and renewal margins.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// CA validity.
    pub ca_days: i64,
    /// Serving certificate validity.
    pub serving_days: i64,
    /// Renew when less than this is left.
    pub renew_before_days: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            ca_days: 3650,
            serving_days: 365,
            renew_before_days: 30,
        }
    }
}

/// Errors of certificate handling.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The API server refused or failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The error.
        source: kube::Error,
    },
    /// A date computation overflowed.
    #[error("date out of range: {0}")]
    Date(String),
}

/// A CA and a serving certificate, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBundle {
    /// CA certificate.
    pub ca_cert_pem: String,
    /// CA private key.
    pub ca_key_pem: String,
    /// When the CA expires.
    pub ca_not_after: Timestamp,
    /// Serving certificate (leaf).
    pub cert_pem: String,
    /// Serving key.
    pub key_pem: String,
    /// When the serving certificate expires.
    pub not_after: Timestamp,
    /// DNS names in the serving certificate.
    pub dns_names: Vec<String>,
}

/// The names a Service is reached by from the API server.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

fn set_validity(
    params: &mut CertificateParams,
    now: Timestamp,
    days: i64,
) -> Result<Timestamp, CertError> {
    let start = now
        .checked_sub(1.hour())
        .map_err(|e| CertError::Date(e.to_string()))?;
    let end = now
        .checked_add(Span::new().hours(24 * days))
        .map_err(|e| CertError::Date(e.to_string()))?;
    let to_rcgen = |t: Timestamp| {
        let d = t.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
        let mut dt = rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8);
        dt = dt
            .replace_hour(d.hour() as u8)
            .and_then(|dt| dt.replace_minute(d.minute() as u8))
            .unwrap_or(dt);
        dt
    };
    params.not_before = to_rcgen(start);
    params.not_after = to_rcgen(end);
    // rcgen keeps minute precision here; report what the certificate says.
    let d = end.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    let reported = d
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .map_err(|e| CertError::Date(e.to_string()))?
        .timestamp();
    Ok(reported)
}

fn ca_params(now: Timestamp, days: i64) -> Result<(CertificateParams, Timestamp), CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sriov-network-operator webhook CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let not_after = set_validity(&mut params, now, days)?;
    Ok((params, not_after))
}

/// A new self-signed CA: (certificate PEM, key PEM, expiry).
pub fn generate_ca(now: Timestamp, days: i64) -> Result<(String, String, Timestamp), CertError> {
    let key = KeyPair::generate()?;
    let (params, not_after) = ca_params(now, days)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// A serving certificate for `dns_names` signed by the CA key (the CA's
/// subject is the one [`generate_ca`] uses): (certificate PEM, key PEM, expiry).
pub fn issue_serving_cert(
    ca_key_pem: &str,
    dns_names: &[String],
    now: Timestamp,
    days: i64,
) -> Result<(String, String, Timestamp), CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let (ca, _) = ca_params(now, days)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let not_after = set_validity(&mut params, now, days)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// A new CA and serving certificate.
pub fn generate(
    dns_names: &[String],
    now: Timestamp,
    lifetimes: Lifetimes,
) -> Result<CertBundle, CertError> {
    let (ca_cert_pem, ca_key_pem, ca_not_after) = generate_ca(now, lifetimes.ca_days)?;
    let (cert_pem, key_pem, not_after) =
        issue_serving_cert(&ca_key_pem, dns_names, now, lifetimes.serving_days)?;
    Ok(CertBundle {
        ca_cert_pem,
        ca_key_pem,
        ca_not_after,
        cert_pem,
        key_pem,
        not_after,
        dns_names: dns_names.to_vec(),
    })
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The Secret is fine.
    Keep(CertBundle),
    /// A new serving certificate from the same CA.
    RenewServing(CertBundle),
    /// A new CA and serving certificate; `old_ca_pem` stays in the caBundle
    /// until the old serving certificate is gone.
    NewCa {
        /// The new bundle.
        bundle: CertBundle,
        /// The previous CA, if it has not expired.
        old_ca_pem: Option<String>,
    },
}

fn secret_string(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|s| !s.is_empty())
}

/// The bundle stored in a Secret, if complete.
pub fn bundle_from_secret(secret: &Secret) -> Option<CertBundle> {
    let annotations = secret.annotations();
    let time = |k: &str| annotations.get(k).and_then(|t| t.parse::<Timestamp>().ok());
    Some(CertBundle {
        ca_cert_pem: secret_string(secret, "ca.crt")?,
        ca_key_pem: secret_string(secret, "ca.key")?,
        ca_not_after: time(CA_NOT_AFTER_ANNOTATION)?,
        cert_pem: secret_string(secret, "tls.crt")?,
        key_pem: secret_string(secret, "tls.key")?,
        not_after: time(NOT_AFTER_ANNOTATION)?,
        dns_names: annotations
            .get(DNS_NAMES_ANNOTATION)
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// Decides what to do with the stored bundle (None: no Secret or an
/// incomplete one).
pub fn plan(
    stored: Option<CertBundle>,
    dns_names: &[String],
    now: Timestamp,
    lifetimes: Lifetimes,
) -> Result<Plan, CertError> {
    let margin = Span::new().hours(24 * lifetimes.renew_before_days);
    let expiring = |t: Timestamp| {
        now.checked_add(margin)
            .map(|limit| t <= limit)
            .unwrap_or(true)
    };
    let Some(stored) = stored else {
        return Ok(Plan::NewCa {
            bundle: generate(dns_names, now, lifetimes)?,
            old_ca_pem: None,
        });
    };
    // The CA must outlive a serving certificate issued now.
    let serving_span =
        Span::new().hours(24 * (lifetimes.serving_days + lifetimes.renew_before_days));
    let ca_too_short = now
        .checked_add(serving_span)
        .map(|limit| stored.ca_not_after <= limit)
        .unwrap_or(true);
    if ca_too_short {
        let old = (stored.ca_not_after > now).then(|| stored.ca_cert_pem.clone());
        return Ok(Plan::NewCa {
            bundle: generate(dns_names, now, lifetimes)?,
            old_ca_pem: old,
        });
    }
    if expiring(stored.not_after) || stored.dns_names != dns_names {
        let (cert_pem, key_pem, not_after) =
            issue_serving_cert(&stored.ca_key_pem, dns_names, now, lifetimes.serving_days)?;
        return Ok(Plan::RenewServing(CertBundle {
            cert_pem,
            key_pem,
            not_after,
            dns_names: dns_names.to_vec(),
            ..stored
        }));
    }
    Ok(Plan::Keep(stored))
}

/// The Secret holding a bundle.
pub fn secret_for(name: &str, namespace: &str, bundle: &CertBundle) -> Secret {
    let data = BTreeMap::from([
        (
            "tls.crt".to_string(),
            ByteString(bundle.cert_pem.clone().into_bytes()),
        ),
        (
            "tls.key".to_string(),
            ByteString(bundle.key_pem.clone().into_bytes()),
        ),
        (
            "ca.crt".to_string(),
            ByteString(bundle.ca_cert_pem.clone().into_bytes()),
        ),
        (
            "ca.key".to_string(),
            ByteString(bundle.ca_key_pem.clone().into_bytes()),
        ),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some(BTreeMap::from([
                (
                    NOT_AFTER_ANNOTATION.to_string(),
                    bundle.not_after.to_string(),
                ),
                (
                    CA_NOT_AFTER_ANNOTATION.to_string(),
                    bundle.ca_not_after.to_string(),
                ),
                (DNS_NAMES_ANNOTATION.to_string(), bundle.dns_names.join(",")),
            ])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(data),
        ..Default::default()
    }
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> CertError {
    let action = action.into();
    move |source| CertError::Kube { action, source }
}

/// What [`ensure_secret`] found or wrote.
#[derive(Debug, Clone)]
pub struct EnsuredCert {
    /// The bundle in use.
    pub bundle: CertBundle,
    /// PEM the webhook configurations must trust: the CA, and during a CA
    /// rotation the previous CA after it.
    pub ca_bundle: String,
    /// The Secret is cert-manager's (nothing was written).
    pub cert_manager: bool,
}

/// The Secret: creates, renews or rotates the
/// certificates in the Secret and returns the CA bundle to trust, without
/// touching any webhook configuration (the operator's controller writes
/// the `caBundle` with the configurations themselves).
pub async fn ensure_secret(
    client: Client,
    namespace: &str,
    secret_name: &str,
    services: &[&str],
    lifetimes: Lifetimes,
) -> Result<EnsuredCert, CertError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let existing = secrets
        .get_opt(secret_name)
        .await
        .map_err(kube_err(format!(
            "reading Secret {namespace}/{secret_name}"
        )))?;
    let dns: Vec<String> = services
        .iter()
        .flat_map(|s| service_dns_names(s, namespace))
        .collect();
    let now = Timestamp::now();
    if let Some(s) = &existing
        && s.annotations().contains_key(CERT_MANAGER_SECRET_ANNOTATION)
    {
        // cert-manager owns the Secret and the caBundle injection.
        let bundle = CertBundle {
            ca_cert_pem: secret_string(s, "ca.crt").unwrap_or_default(),
            ca_key_pem: String::new(),
            ca_not_after: now,
            cert_pem: secret_string(s, "tls.crt").unwrap_or_default(),
            key_pem: secret_string(s, "tls.key").unwrap_or_default(),
            not_after: now,
            dns_names: dns,
        };
        return Ok(EnsuredCert {
            ca_bundle: bundle.ca_cert_pem.clone(),
            bundle,
            cert_manager: true,
        });
    }
    let stored = existing.as_ref().and_then(bundle_from_secret);
    let (bundle, old_ca, changed) = match plan(stored, &dns, now, lifetimes)? {
        Plan::Keep(b) => (b, None, false),
        Plan::RenewServing(b) => (b, None, true),
        Plan::NewCa { bundle, old_ca_pem } => (bundle, old_ca_pem, true),
    };
    if changed {
        let mut secret = secret_for(secret_name, namespace, &bundle);
        match existing {
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version.clone();
                secrets
                    .replace(secret_name, &PostParams::default(), &secret)
                    .await
                    .map_err(kube_err(format!(
                        "updating Secret {namespace}/{secret_name}"
                    )))?;
            }
            None => {
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .map_err(kube_err(format!(
                        "creating Secret {namespace}/{secret_name}"
                    )))?;
            }
        }
        tracing::info!(secret = secret_name, not_after = %bundle.not_after, "webhook serving certificate written");
    }
    let mut ca_bundle = bundle.ca_cert_pem.clone();
    if let Some(old) = old_ca {
        ca_bundle.push_str(&old);
    }
    Ok(EnsuredCert {
        bundle,
        ca_bundle,
        cert_manager: false,
    })
}
