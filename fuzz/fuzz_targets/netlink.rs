//! Route netlink replies as `Netlink::request` reads them: messages split
//! by their length field, decoded, and `RTM_NEWLINK` turned into a link and
//! its VFs (with the raw walk that finds spoofchk/trust left unreported).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use sriov_host::netlink::message::{self, RouteMessage};

fuzz_target!(|data: &[u8]| {
    let mut off = 0;
    while off + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > data.len() {
            break;
        }
        if let Ok(msg) = RouteMessage::deserialize(&data[off..off + len])
            && let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lm)) = &msg.payload
        {
            let _ = message::link_from_message(lm);
            let mut vfs = message::vfs_from_message(lm);
            message::mark_unreported(&mut vfs, &data[off..off + len]);
        }
        off += (len + 3) & !3;
    }
});
