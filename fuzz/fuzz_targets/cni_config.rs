//! The CNI config on stdin and the CNI_ARGS string: the strict parse (ADD,
//! strict CHECK), the lenient one (DEL, GC, STATUS, Go-style CHECK) and the
//! peeks the plugin does before either. Input: `CNI_ARGS\0stdin`, or only
//! stdin when there is no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_cni::config::{self, NetConf};
use sriov_cni::env::CniArgs;

fuzz_target!(|data: &[u8]| {
    let (args, stdin) = match data.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let args = args.and_then(|a| CniArgs::parse(a).ok());
    let mac = args.as_ref().and_then(|a| a.get("MAC"));
    let _ = config::peek_version(stdin);
    let _ = config::peek_strict_check(stdin);
    let strict = NetConf::parse(stdin, mac);
    let lenient = NetConf::parse_lenient(stdin, mac);
    // What the strict parse accepts, the lenient one accepts too.
    if strict.is_ok() {
        assert!(lenient.is_ok(), "strict parse accepted, lenient refused");
    }
    if let Ok(conf) = strict {
        let _ = conf.vf.to_settings();
    }
});
