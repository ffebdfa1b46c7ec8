//! VF settings on the PF: apply the ones a config sets, one request per
//! setting (so an error names the setting), undo them in reverse on
//! failure, and restore them from saved state on DEL.

use nix::errno::Errno;
use sriov_host::netlink::{LinkId, LinkOps, MacAddr, NetlinkError, VfSetting};

use crate::config::VfSettings;
use crate::error::{CniError, Result};
use crate::state::OrigVfState;

/// Sets one VF setting; for an 802.1Q VLAN rejected by the driver in the
/// form `ip link` uses (`IFLA_VF_VLAN`), retries with `IFLA_VF_VLAN_LIST`.
pub fn set_one(link: &dyn LinkOps, pf: &str, vf: u32, s: VfSetting) -> Result<(), NetlinkError> {
    match link.set_vf(LinkId::from(pf), vf, &[s]) {
        Err(e)
            if matches!(s, VfSetting::Vlan(v) if v.proto == sriov_host::netlink::VlanProto::Dot1Q)
                && matches!(
                    e.errno(),
                    Some(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EPROTONOSUPPORT)
                ) =>
        {
            let VfSetting::Vlan(v) = s else {
                unreachable!()
            };
            tracing::debug!(
                pf,
                vf,
                "VLAN rejected in IFLA_VF_VLAN form ({e}); retrying as IFLA_VF_VLAN_LIST"
            );
            link.set_vf(LinkId::from(pf), vf, &[VfSetting::VlanList(v)])
                .map_err(|_| e)
        }
        r => r,
    }
}

/// The value a setting had before ADD, from saved state.
pub fn original_of(s: &VfSetting, orig: &OrigVfState) -> VfSetting {
    match s {
        VfSetting::Mac(_) => VfSetting::Mac(orig.admin_mac().unwrap_or(MacAddr::ZERO)),
        VfSetting::Vlan(_) | VfSetting::VlanList(_) => VfSetting::Vlan(orig.vlan()),
        VfSetting::SpoofCheck(_) => VfSetting::SpoofCheck(orig.spoofchk),
        VfSetting::Trust(_) => VfSetting::Trust(orig.trust),
        VfSetting::LinkState(_) => VfSetting::LinkState(orig.link_state()),
        VfSetting::Rate { .. } => VfSetting::Rate {
            min_mbps: orig.min_tx_rate.max(0) as u32,
            max_mbps: orig.max_tx_rate.max(0) as u32,
        },
    }
}

/// What a config asks for on the PF, in order: the MAC (when given) first,
/// then vlan, spoofchk, trust, link state, rates.
pub fn wanted(settings: &VfSettings, mac: Option<MacAddr>) -> Vec<VfSetting> {
    let mut v = Vec::new();
    if let Some(m) = mac {
        v.push(VfSetting::Mac(m));
    }
    v.extend(settings.to_settings());
    v
}

/// Applies `wanted` one by one. On a failure, sets what was applied back to
/// `orig` in reverse order and returns the error (naming the setting;
/// code 104 when the driver does not support it).
pub fn apply(
    link: &dyn LinkOps,
    pf: &str,
    vf: u32,
    wanted: &[VfSetting],
    orig: &OrigVfState,
) -> Result<()> {
    for (i, s) in wanted.iter().enumerate() {
        if let Err(e) = set_one(link, pf, vf, *s) {
            for done in wanted[..i].iter().rev() {
                if let Err(u) = set_one(link, pf, vf, original_of(done, orig)) {
                    tracing::warn!("undo of {} failed: {u}", done.what());
                }
            }
            return Err(CniError::netlink(
                format!(
                    "cannot set {} ({}) for VF {vf} on PF {pf}",
                    s.what(),
                    s.ip_args()
                ),
                &e,
            ));
        }
    }
    Ok(())
}

/// Restores the settings in `applied` to `orig`, in reverse order. A PF
/// that is gone (ENODEV) and a setting the driver does not support
/// (EOPNOTSUPP: it cannot have been changed) are not errors; any other
/// failure is returned after trying every setting.
pub fn restore(
    link: &dyn LinkOps,
    pf: &str,
    vf: u32,
    applied: &[VfSetting],
    orig: &OrigVfState,
) -> Result<()> {
    let mut first_err = None;
    for s in applied.iter().rev() {
        let back = original_of(s, orig);
        match set_one(link, pf, vf, back) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::ENODEV) => {
                tracing::info!(pf, "PF is gone; nothing to restore");
                return Ok(());
            }
            Err(e) if e.is_not_supported() => {
                // A setting the driver cannot do was never changed.
                tracing::debug!(
                    "{} not supported by the driver; nothing to restore",
                    back.what()
                );
            }
            Err(e) => {
                tracing::warn!("cannot restore {}: {e}", back.what());
                first_err.get_or_insert(CniError::netlink(
                    format!(
                        "cannot restore {} ({}) for VF {vf} on PF {pf}",
                        back.what(),
                        back.ip_args()
                    ),
                    &e,
                ));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use sriov_host::netlink::{
        Call, Failure, RecordingLinkOps, VfInfo, VfLinkState, VfVlan, VlanProto,
    };

    fn fake() -> RecordingLinkOps {
        let f = RecordingLinkOps::new();
        f.add_pf("pf0", "b4:96:91:00:3b:00".parse().unwrap(), 4);
        f
    }

    fn orig_of(f: &RecordingLinkOps) -> OrigVfState {
        let mut o = OrigVfState::default();
        o.set_pf_side(&f.vf_state("pf0", 2).unwrap());
        o
    }

    fn all() -> VfSettings {
        VfSettings {
            vlan: Some(VfVlan {
                vlan: 100,
                qos: 2,
                proto: VlanProto::Dot1Q,
            }),
            spoofchk: Some(false),
            trust: Some(true),
            link_state: Some(VfLinkState::Enable),
            rate: Some((10, 100)),
        }
    }

    #[test]
    fn applies_only_configured_settings_one_by_one() {
        let f = fake();
        let orig = orig_of(&f);
        let only = VfSettings {
            trust: Some(true),
            ..Default::default()
        };
        apply(&f, "pf0", 2, &wanted(&only, None), &orig).unwrap();
        assert_eq!(
            f.changes(),
            vec![Call::SetVf {
                pf: "pf0".into(),
                vf: 2,
                settings: vec![VfSetting::Trust(true)]
            }]
        );
        f.clear_calls();
        let mac: MacAddr = "02:00:00:00:00:07".parse().unwrap();
        apply(&f, "pf0", 2, &wanted(&all(), Some(mac)), &orig).unwrap();
        assert_eq!(f.changes().len(), 6);
        let st = f.vf_state("pf0", 2).unwrap();
        assert_eq!(st.mac, mac);
        assert_eq!(st.vlan.vlan, 100);
        assert_eq!((st.spoofchk, st.trust), (Some(false), Some(true)));
        assert_eq!(st.link_state, VfLinkState::Enable);
        assert_eq!((st.min_tx_rate, st.max_tx_rate), (10, 100));
        // restore puts everything back
        restore(&f, "pf0", 2, &wanted(&all(), Some(mac)), &orig).unwrap();
        assert_eq!(f.vf_state("pf0", 2).unwrap(), VfInfo::fresh(2));
    }

    #[test]
    fn flags_the_driver_does_not_report_are_restored_to_the_defaults() {
        // A driver that keeps spoofchk and trust but does not report them:
        // the saved original is the new-VF default (spoofchk on, trust
        // off), not "off" for both, so DEL neither leaves spoof checking
        // off nor turns trust on (what saving the Go plugin's reading of
        // the kernel's -1, "on", would do).
        let f = fake();
        f.hide_vf_flags("pf0");
        let seen = f.vfs(LinkId::from("pf0")).unwrap();
        assert_eq!((seen[2].spoofchk, seen[2].trust), (None, None));
        let mut orig = OrigVfState::default();
        orig.set_pf_side(&seen[2]);
        assert!(orig.spoofchk && !orig.trust);
        let want = wanted(&all(), None);
        apply(&f, "pf0", 2, &want, &orig).unwrap();
        let st = f.vf_state("pf0", 2).unwrap();
        assert_eq!((st.spoofchk, st.trust), (Some(false), Some(true)));
        restore(&f, "pf0", 2, &want, &orig).unwrap();
        assert_eq!(f.vf_state("pf0", 2).unwrap(), VfInfo::fresh(2));
    }

    #[test]
    fn unsupported_setting_is_named_and_earlier_ones_undone() {
        let f = fake();
        let orig = orig_of(&f);
        f.fail(Failure::vf_setting(Errno::EOPNOTSUPP, |s| {
            matches!(s, VfSetting::LinkState(_))
        }));
        let e = apply(&f, "pf0", 2, &wanted(&all(), None), &orig).unwrap_err();
        assert_eq!(e.code, Code::VfSettingUnsupported);
        assert!(e.msg.contains("VF link state"), "{e}");
        assert!(e.details.contains("EOPNOTSUPP"), "{e}");
        // vlan, spoofchk, trust were applied and undone in reverse
        assert_eq!(f.vf_state("pf0", 2).unwrap(), VfInfo::fresh(2));
        let changes = f.changes();
        let last3: Vec<_> = changes[changes.len() - 3..].to_vec();
        assert_eq!(
            last3,
            vec![
                Call::SetVf {
                    pf: "pf0".into(),
                    vf: 2,
                    settings: vec![VfSetting::Trust(false)]
                },
                Call::SetVf {
                    pf: "pf0".into(),
                    vf: 2,
                    settings: vec![VfSetting::SpoofCheck(true)]
                },
                Call::SetVf {
                    pf: "pf0".into(),
                    vf: 2,
                    settings: vec![VfSetting::Vlan(VfVlan::new(0))]
                },
            ]
        );
    }

    #[test]
    fn dot1q_vlan_falls_back_to_list_form() {
        let f = fake();
        let orig = orig_of(&f);
        f.fail(Failure::vf_setting(Errno::EINVAL, |s| matches!(s, VfSetting::Vlan(_))).times(1));
        let only = VfSettings {
            vlan: Some(VfVlan::new(42)),
            ..Default::default()
        };
        apply(&f, "pf0", 2, &wanted(&only, None), &orig).unwrap();
        assert_eq!(
            f.changes(),
            vec![
                Call::SetVf {
                    pf: "pf0".into(),
                    vf: 2,
                    settings: vec![VfSetting::Vlan(VfVlan::new(42))]
                },
                Call::SetVf {
                    pf: "pf0".into(),
                    vf: 2,
                    settings: vec![VfSetting::VlanList(VfVlan::new(42))]
                },
            ]
        );
        assert_eq!(f.vf_state("pf0", 2).unwrap().vlan.vlan, 42);
        // 802.1ad has no fallback: the error is returned
        f.fail(Failure::vf_setting(Errno::EPROTONOSUPPORT, |s| {
            matches!(s, VfSetting::Vlan(_))
        }));
        let ad = VfSettings {
            vlan: Some(VfVlan {
                vlan: 5,
                qos: 0,
                proto: VlanProto::Dot1Ad,
            }),
            ..Default::default()
        };
        let e = apply(&f, "pf0", 2, &wanted(&ad, None), &orig).unwrap_err();
        assert_eq!(e.code, Code::Netlink);
        assert!(e.msg.contains("802.1ad"), "{e}");
    }

    #[test]
    fn restore_tolerates_missing_pf_but_reports_other_errors() {
        let f = RecordingLinkOps::new();
        let orig = OrigVfState::default();
        // no such PF: NotFound (ENODEV) is fine
        restore(&f, "gone0", 1, &[VfSetting::Trust(true)], &orig).unwrap();
        let f = fake();
        f.fail(Failure::vf_setting(Errno::EBUSY, |s| {
            matches!(s, VfSetting::Trust(_))
        }));
        let e = restore(
            &f,
            "pf0",
            1,
            &[VfSetting::Trust(true), VfSetting::SpoofCheck(false)],
            &orig,
        )
        .unwrap_err();
        assert!(e.msg.contains("VF trust"), "{e}");
        // the other setting was still restored
        assert_eq!(f.vf_state("pf0", 1).unwrap().spoofchk, Some(false));
    }
}
