//! PCI function addresses (`0000:3b:02.1`), the key of every other model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string is not a PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, hex)")]
pub struct AddressError {
    pub input: String,
}

/// A PCI function address: domain, bus, device (slot) and function.
///
/// Parses the full form `0000:3b:02.1` and the short form `3b:02.1` (domain
/// 0); hex is case-insensitive. Displays the full, lower-case form the kernel
/// uses in sysfs. Orders by domain, bus, device, function. Serializes as the
/// full string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciAddress {
    /// An address from its parts. `device` must be < 32 and `function` < 8.
    pub fn new(domain: u32, bus: u8, device: u8, function: u8) -> Option<Self> {
        (device < 32 && function < 8).then_some(Self {
            domain,
            bus,
            device,
            function,
        })
    }

    /// Parses a full or short address; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (domain, rest) = match s.matches(':').count() {
            2 => {
                let (d, r) = s.split_once(':')?;
                if d.is_empty() || d.len() > 8 {
                    return None;
                }
                (u32::from_str_radix(d, 16).ok()?, r)
            }
            1 => (0, s),
            _ => return None,
        };
        let (bus, devfn) = rest.split_once(':')?;
        let (dev, func) = devfn.split_once('.')?;
        if bus.is_empty() || bus.len() > 2 || dev.is_empty() || dev.len() > 2 || func.len() != 1 {
            return None;
        }
        let hex = |v: &str| v.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(bus) || !hex(dev) || !hex(func) {
            return None;
        }
        Self::new(
            domain,
            u8::from_str_radix(bus, 16).ok()?,
            u8::from_str_radix(dev, 16).ok()?,
            u8::from_str_radix(func, 16).ok()?,
        )
    }

    /// The 16-bit routing ID (`bus << 8 | device << 3 | function`).
    pub fn routing_id(&self) -> u16 {
        (u16::from(self.bus) << 8) | (u16::from(self.device) << 3) | u16::from(self.function)
    }
}

impl FromStr for PciAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        Self::parse(s).ok_or_else(|| AddressError {
            input: s.to_string(),
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl Serialize for PciAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PciAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a PCI address (DDDD:BB:DD.F)"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_full_and_short() {
        let a: PciAddress = "0000:3b:02.1".parse().unwrap();
        assert_eq!((a.domain, a.bus, a.device, a.function), (0, 0x3b, 2, 1));
        assert_eq!("3B:02.1".parse::<PciAddress>().unwrap(), a);
        assert_eq!(a.to_string(), "0000:3b:02.1");
        let b: PciAddress = "10000:e1:1f.7".parse().unwrap();
        assert_eq!(b.to_string(), "10000:e1:1f.7");
        for bad in [
            "",
            "3b:02",
            "3b:20.0",
            "3b:1f.8",
            "0000:3b:02.1.0",
            "x:3b:02.0",
            "3b:02.10",
            ":3b:02.0",
            "3b::02.0",
            "eth0",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad} parsed");
        }
        assert!(
            "eth0"
                .parse::<PciAddress>()
                .unwrap_err()
                .to_string()
                .contains("not a PCI address")
        );
    }

    #[test]
    fn addresses_order_by_domain_bus_device_function() {
        let mut v: Vec<PciAddress> = [
            "0001:00:00.0",
            "0000:3b:00.1",
            "0000:3b:00.0",
            "0000:0a:1f.0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "0000:0a:1f.0",
                "0000:3b:00.0",
                "0000:3b:00.1",
                "0001:00:00.0"
            ]
        );
        assert_eq!(v[0].routing_id(), 0x0af8);
    }

    #[test]
    fn addresses_serialize_as_strings() {
        let a: PciAddress = "3b:02.0".parse().unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"0000:3b:02.0\"");
        let b: PciAddress = serde_json::from_str("\"0000:3b:02.0\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<PciAddress>("\"nope\"").is_err());
    }
}
