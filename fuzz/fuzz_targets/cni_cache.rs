//! The CNI cache/state files under `/var/lib/cni/sriov/`: ours and the Go
//! plugin's (v2.7 with ContIFNames, v2.8+ without), decoded as DEL and GC
//! decode them, then written back and read again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sriov_cni::config::cached_vf_settings;
use sriov_cni::state::Saved;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/var/lib/cni/sriov/0123456789abcdef-net1");
    if let Ok(saved) = Saved::from_json(data, path) {
        let _ = cached_vf_settings(&saved.config);
        let again = saved.to_json();
        let _ = Saved::from_json(&again, path);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = cached_vf_settings(&v);
    }
});
