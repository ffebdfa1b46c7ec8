//! What the host crate parses out of sysfs: attribute text (trimmed, lossy
//! UTF-8), hex ids and class codes, PCI addresses, operstate, auxiliary
//! device names, MACs, the VF link-state and VLAN-protocol spellings, and
//! `getdents64` directory buffers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_host::fuzzing::{attribute_text, parse_dirents, parse_hex_u16, parse_hex_u32};
use sriov_host::netlink::{MacAddr, VfLinkState, VlanProto};
use sriov_host::{OperState, PciAddress, auxiliary};

fuzz_target!(|data: &[u8]| {
    let mut names = Vec::new();
    parse_dirents(data, &mut names);
    let text = attribute_text(data);
    let s = text.as_str();
    let _ = parse_hex_u32(s);
    let _ = parse_hex_u16(s);
    if let Some(pci) = PciAddress::parse(s) {
        // An address that parses prints back to something that parses alike.
        assert_eq!(PciAddress::parse(&pci.to_string()), Some(pci));
    }
    let _ = OperState::parse(s);
    let _ = auxiliary::parse_name(s);
    let _ = s.parse::<MacAddr>();
    let _ = s.parse::<VfLinkState>();
    let _ = s.parse::<VlanProto>();
    let _ = s.parse::<i64>();
    for line in s.lines() {
        let _ = PciAddress::parse(line.trim());
    }
});
