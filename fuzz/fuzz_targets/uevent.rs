//! Kernel uevent datagrams (`ACTION@DEVPATH\0KEY=VALUE\0…`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sriov_host::uevent::parse(data);
});
