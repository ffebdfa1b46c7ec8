//! The device plugin's config file (`resourceList`, selectors as an object
//! or a list, pfNames/rootDevices ranges).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_device_plugin::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, "fuzz", "intel.com");
    }
});
