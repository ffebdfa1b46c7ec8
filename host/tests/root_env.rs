//! `HostRoot::from_env` (its own test binary: it changes the environment).

use std::path::Path;

use sriov_host::root::{HOST_ROOT_ENV, HostRoot};

#[test]
fn the_host_root_comes_from_sriov_host_root_or_defaults_to_slash() {
    // SAFETY: the only test in this binary; no other thread reads the env.
    unsafe { std::env::remove_var(HOST_ROOT_ENV) };
    assert_eq!(HostRoot::from_env().path(), Path::new("/"));
    unsafe { std::env::set_var(HOST_ROOT_ENV, "") };
    assert_eq!(HostRoot::from_env().path(), Path::new("/"));
    unsafe { std::env::set_var(HOST_ROOT_ENV, "/host") };
    let r = HostRoot::from_env();
    assert_eq!(r.path(), Path::new("/host"));
    assert_eq!(
        r.drivers_probe(),
        Path::new("/host/sys/bus/pci/drivers_probe")
    );
}
