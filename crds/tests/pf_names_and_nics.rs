//! Table tests: pfNames range syntax, and the supported NIC list.

use std::collections::BTreeMap;

use sriov_crds::nic_ids::{NicIdError, NicIdList};
use sriov_crds::pf_names::{PfNameError, PfSelector, VfRange};

type Accepted = (&'static str, &'static str, Option<(u32, u32)>);

#[test]
fn pf_names_accepted() {
    let cases: &[Accepted] = &[
        ("ens1f0", "ens1f0", None),
        ("ens1f0#2-5", "ens1f0", Some((2, 5))),
        ("ens1f0#0-0", "ens1f0", Some((0, 0))),
        ("enp59s0f1np1#10-127", "enp59s0f1np1", Some((10, 127))),
        ("0000:86:00.0#1-3", "0000:86:00.0", Some((1, 3))),
    ];
    for (entry, name, range) in cases {
        let p = PfSelector::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        assert_eq!(p.name, *name, "{entry}");
        assert_eq!(p.range.map(|r| (r.start, r.end)), *range, "{entry}");
        assert_eq!(p.to_string(), *entry, "format gives back the entry");
    }
}

#[test]
fn pf_names_rejected_with_message() {
    let cases: &[(&str, &str)] = &[
        (
            "ens1f0#1-2#3-4",
            "PF name \"ens1f0#1-2#3-4\" has more than one '#'; write it as <pf>#<first>-<last>, e.g. ens1f0#2-5",
        ),
        (
            "#0-3",
            "PF name \"#0-3\" has no interface name before '#'; write it as <pf>#<first>-<last>, e.g. ens1f0#2-5",
        ),
        (
            "",
            "PF name \"\" has no interface name before '#'; write it as <pf>#<first>-<last>, e.g. ens1f0#2-5",
        ),
        (
            "ens 1",
            "PF name \"ens 1\" contains whitespace; interface names have none",
        ),
        (
            "ens1f0#3",
            "VF range in \"ens1f0#3\" must be <first>-<last>, e.g. ens1f0#2-5 (a single VF is 3-3)",
        ),
        (
            "ens1f0#",
            "VF range in \"ens1f0#\" must be <first>-<last>, e.g. ens1f0#2-5 (a single VF is 3-3)",
        ),
        (
            "ens1f0#a-3",
            "VF range in \"ens1f0#a-3\": start index \"a\" is not a non-negative number",
        ),
        (
            "ens1f0#1-",
            "VF range in \"ens1f0#1-\": end index \"\" is not a non-negative number",
        ),
        (
            "ens1f0#-1-3",
            "VF range in \"ens1f0#-1-3\": start index \"\" is not a non-negative number",
        ),
        (
            "ens1f0#5-2",
            "VF range in \"ens1f0#5-2\": first index 5 is above last index 2; write 2-5",
        ),
        (
            "ens1f0#1-99999999999",
            "VF range in \"ens1f0#1-99999999999\": end index \"99999999999\" is not a non-negative number",
        ),
    ];
    for (entry, msg) in cases {
        let err = PfSelector::parse(entry).expect_err(entry);
        assert_eq!(err.to_string(), *msg, "{entry}");
    }
}

#[test]
fn vf_ranges() {
    let r = VfRange::parse("2-5").unwrap();
    assert_eq!((r.start, r.end, r.len()), (2, 5, 4));
    assert!(r.contains(2) && r.contains(5) && !r.contains(6) && !r.contains(1));
    assert!(r.overlaps(&VfRange::new(5, 9).unwrap()));
    assert!(r.overlaps(&VfRange::new(0, 2).unwrap()));
    assert!(r.overlaps(&VfRange::new(3, 3).unwrap()));
    assert!(!r.overlaps(&VfRange::new(6, 9).unwrap()));
    assert!(!r.overlaps(&VfRange::new(0, 1).unwrap()));
    assert_eq!(r.to_string(), "2-5");
    assert!(matches!(
        VfRange::new(3, 1),
        Err(PfNameError::Reversed { .. })
    ));
    let all = PfSelector::parse("ens1f0").unwrap();
    assert_eq!(all.effective_range(8), Some(VfRange::new(0, 7).unwrap()));
    assert_eq!(all.effective_range(0), None);
    let some = PfSelector::parse("ens1f0#2-3").unwrap();
    assert_eq!(some.effective_range(8), Some(VfRange::new(2, 3).unwrap()));
}

#[test]
fn builtin_nic_list_lookups() {
    let nics = NicIdList::builtin();
    assert!(nics.entries().len() >= 40, "{}", nics.entries().len());
    assert!(nics.is_known_pf("8086", "158b"));
    assert!(nics.is_known_pf("8086", "158B"), "case-insensitive");
    assert!(nics.is_known_pf("15b3", "101d"));
    assert!(!nics.is_known_pf("8086", "154c"), "a VF id is not a PF");
    assert!(nics.is_known_vf("8086", "154c"));
    assert!(
        !nics.is_known_pf("15b3", "158b"),
        "vendor and device must match together"
    );
    assert_eq!(nics.vf_device_for("8086", "158b"), Some("154c"));
    assert_eq!(nics.vf_device_for("8086", "1593"), Some("1889"));
    assert_eq!(nics.vf_device_for("15b3", "1017"), Some("1018"));
    assert_eq!(nics.vf_device_for("8086", "ffff"), None);
    assert_eq!(nics.vf_device_for_pf_device("1015"), Some("1016"));
    assert!(nics.is_known_vendor("14e4"));
    assert!(!nics.is_known_vendor("dead"));
    // The virtio row has an empty trailing driver column; it still parses.
    assert!(nics.is_known_pf("1af4", "1000"));
}

#[test]
fn tsv_parsing_rejects_bad_lines() {
    let ok = NicIdList::parse_tsv(
        "# c\nmodel_key\tvendor_id\tpf\tvf\nX\t8086\t0x1572\t154C\n",
        "t.tsv",
    )
    .unwrap();
    assert_eq!(
        ok.vf_device_for("8086", "1572"),
        Some("154c"),
        "0x and upper case normalized"
    );
    let e = NicIdList::parse_tsv("X\t8086\t1572\n", "t.tsv").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.tsv line 1: expected at least 4 tab-separated columns (model_key vendor_id pf_device_id vf_device_id), found 3"
    );
    let e = NicIdList::parse_tsv("X\t80866\t1572\t154c\n", "t.tsv").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.tsv line 1: vendor id \"80866\" must be 4 hex digits without 0x, e.g. 8086"
    );
}

#[test]
fn config_map_format_and_override() {
    let mut data = BTreeMap::new();
    data.insert(
        "Intel_i40e_XXV710".to_string(),
        "8086 158a 154c".to_string(),
    );
    data.insert("My_NIC".to_string(), "abcd 0001 0002".to_string());
    let extra = NicIdList::parse_config_map(&data, "supported-nic-ids").unwrap();
    assert_eq!(extra.entries().len(), 2);
    let mut nics = NicIdList::builtin();
    let before = nics.entries().len();
    nics.extend(extra);
    assert_eq!(
        nics.entries().len(),
        before + 1,
        "same vendor+PF replaces, new one is added"
    );
    assert_eq!(nics.vf_device_for("abcd", "0001"), Some("0002"));

    let mut bad = BTreeMap::new();
    bad.insert("Broken".to_string(), "8086 158a".to_string());
    assert_eq!(
        NicIdList::parse_config_map(&bad, "supported-nic-ids").unwrap_err(),
        NicIdError::Entry {
            source_name: "supported-nic-ids".into(),
            key: "Broken".into(),
            value: "8086 158a".into()
        }
    );
    assert_eq!(
        NicIdList::parse_config_map(&bad, "cm")
            .unwrap_err()
            .to_string(),
        "cm entry \"Broken\": value \"8086 158a\" must be three space-separated ids \"vendor pf vf\", e.g. \"8086 158b 154c\""
    );
}

#[test]
fn nic_list_from_files() {
    let dir = std::env::temp_dir().join(format!("sriov-crds-nics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let cm = dir.join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: supported-nic-ids\ndata:\n  Intel_ice: \"8086 1592 1889\"\n",
    )
    .unwrap();
    let nics = NicIdList::from_file(&cm).unwrap();
    assert_eq!(nics.vf_device_for("8086", "1592"), Some("1889"));
    let map = dir.join("map.yaml");
    std::fs::write(&map, "Mlx: \"15b3 1017 1018\"\n").unwrap();
    assert!(
        NicIdList::from_file(&map)
            .unwrap()
            .is_known_pf("15b3", "1017")
    );
    let tsv = dir.join("nics.tsv");
    std::fs::write(&tsv, "A\t1234\tabcd\tabce\tX\tdrv\n").unwrap();
    assert_eq!(
        NicIdList::from_file(&tsv)
            .unwrap()
            .vf_device_for("1234", "abcd"),
        Some("abce")
    );
    let missing = dir.join("missing.tsv");
    let e = NicIdList::from_file(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "reading NIC list {}: No such file",
            missing.display()
        )),
        "{e}"
    );
}
