//! The device plugin's config file (`resourceList`, selectors as an object
//! or a list, pfNames/rootDevices ranges), read through the typed model
//! (`sriov_crds::device_plugin_config::read`). The entries read are
//! written back as the config daemon writes the model (`to_json`) and read
//! again: the same entries, and the plugin builds the same pools.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_crds::device_plugin_config::{DevicePluginConfig, read};
use sriov_device_plugin::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Config::parse(text, "fuzz", "intel.com");
    let Ok(entries) = read(text, "fuzz") else {
        assert!(parsed.is_err(), "the plugin accepts what the model rejects");
        return;
    };
    let model = DevicePluginConfig {
        resource_list: entries
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| e.resource)
            .collect(),
    };
    let written = model.to_json();
    let again: Vec<_> = read(&written, "fuzz")
        .expect("what the model writes reads back")
        .into_iter()
        .map(|e| e.expect("an entry read once reads again").resource)
        .collect();
    assert_eq!(again, model.resource_list, "{written}");
    let reparsed = Config::parse(&written, "fuzz", "intel.com").expect("written config parses");
    assert_eq!(reparsed.resources, parsed.expect("read ok, parse ok").resources);
});
