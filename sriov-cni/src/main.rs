//! `sriov`: the SR-IOV CNI plugin binary. Reads the CNI environment and the
//! network config on stdin, prints the result or the error JSON on stdout.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!(
            "sriov {}: the SR-IOV CNI plugin (type \"sriov\").\n\n\
             Run by a container runtime (Multus) with CNI_COMMAND=ADD|DEL|CHECK|VERSION|STATUS|GC,\n\
             CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH and the network config on stdin.\n\
             The result or error JSON goes to stdout; logs to stderr or the config's logFile.\n\
             SRIOV_HOST_ROOT sets the host root (default /). State: config dataDir (default /var/lib/cni/sriov).\n\
             See docs/cni.md.",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("sriov {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let mut stdin = Vec::new();
    let env = sriov_cni::env::CniEnv::from_process();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        let err = sriov_cni::error::CniError::new(
            sriov_cni::error::Code::Io,
            "cannot read the network config from stdin",
            e.to_string(),
        );
        println!("{}", err.to_json(sriov_cni::config::LATEST_VERSION));
        std::process::exit(1);
    }
    let out = sriov_cni::run::run(env, &stdin, sriov_cni::run::real_netlink);
    if !out.stdout.is_empty() {
        println!("{}", out.stdout);
    }
    std::process::exit(out.code);
}
