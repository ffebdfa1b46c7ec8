//! HTTP/2 `:authority` repair for the registration socket.
//!
//! The kubelet's plugin watcher dials a plugin's registration socket with
//! `grpc.DialContext(ctx, "/var/lib/kubelet/plugins_registry/<x>-reg.sock")`
//! (kubelet 1.34, `pluginmanager/operationexecutor/operation_generator.go`).
//! grpc-go then sends the socket path as the HTTP/2 `:authority`. A path is
//! not an authority (RFC 3986 §3.2), and the `h2` server under tonic answers
//! such a request with `RST_STREAM(PROTOCOL_ERROR)` (hyperium/h2#487), so the
//! kubelet never sees our `GetInfo` answer and the driver never registers.
//! Kubernetes fixed the device-plugin and CSI clients (kubernetes#112597) but
//! not the plugin watcher. The DRA service socket itself is dialed as
//! `unix:<path>` (authority `localhost`) and needs none of this.
//!
//! [`rewrite_authority`] sits between an accepted connection and the server:
//! it forwards the client's bytes frame by frame, decodes each header block
//! (HEADERS plus its CONTINUATIONs) with the client's HPACK state, replaces an
//! `:authority` that is not a valid authority by `localhost`, and re-encodes
//! the block with its own HPACK state towards the server. Every other frame,
//! and the whole server-to-client direction, passes unchanged.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types and flags used here (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload forwarded: the protocol's default
/// `SETTINGS_MAX_FRAME_SIZE`, which the servers here never raise. A peer
/// sending more is broken or hostile and loses its connection.
const MAX_FRAME: usize = 16_384;
/// The largest header block accepted across CONTINUATIONs.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// The HPACK dynamic table size both sides use: the protocol default, which
/// the h2 server does not change.
const TABLE_SIZE: usize = 4_096;
/// What an invalid `:authority` becomes: what grpc-go itself sends for
/// `unix:` targets.
pub const REPLACEMENT: &str = "localhost";

/// The 9-byte frame header.
#[derive(Debug, Clone, Copy)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHead {
    fn parse(b: &[u8; 9]) -> Self {
        Self {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.len).expect("frame length fits in 24 bits");
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// True when `value` is something an HTTP/2 server accepts as `:authority`.
pub fn is_valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// The HPACK state of one connection: the client's encoder as seen by us,
/// and our encoder towards the server.
pub struct HeaderRewriter {
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    /// How many `:authority` values were replaced.
    pub rewritten: usize,
}

impl Default for HeaderRewriter {
    fn default() -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Self {
            decoder,
            encoder: loona_hpack::Encoder::new(),
            rewritten: 0,
        }
    }
}

impl HeaderRewriter {
    /// Decodes one complete header block, repairs `:authority`, and returns
    /// the block re-encoded for the server.
    pub fn rewrite_block(&mut self, block: &[u8]) -> io::Result<Vec<u8>> {
        let mut headers = self
            .decoder
            .decode(block)
            .map_err(|e| bad(format!("HPACK: {e}")))?;
        for (name, value) in &mut headers {
            if name.as_slice() == b":authority" && !is_valid_authority(value) {
                tracing::debug!(
                    authority = %String::from_utf8_lossy(value),
                    "replacing an :authority that is not an authority"
                );
                *value = REPLACEMENT.as_bytes().to_vec();
                self.rewritten += 1;
            }
        }
        Ok(self
            .encoder
            .encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))))
    }
}

/// Reads one frame; `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(FrameHead, Vec<u8>)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let head = FrameHead::parse(&head);
    if head.len > MAX_FRAME {
        return Err(bad(format!("frame of {} bytes", head.len)));
    }
    let mut payload = vec![0u8; head.len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head, payload)))
}

/// Splits a HEADERS frame payload into (priority fields, block fragment).
fn headers_fragment(head: &FrameHead, payload: &[u8]) -> io::Result<(Option<[u8; 5]>, Vec<u8>)> {
    let mut body = payload;
    let mut pad = 0usize;
    if head.flags & PADDED != 0 {
        let (&p, rest) = body
            .split_first()
            .ok_or_else(|| bad("empty padded frame"))?;
        pad = usize::from(p);
        body = rest;
    }
    let mut priority = None;
    if head.flags & PRIORITY != 0 {
        if body.len() < 5 {
            return Err(bad("short priority fields"));
        }
        let mut p = [0u8; 5];
        p.copy_from_slice(&body[..5]);
        priority = Some(p);
        body = &body[5..];
    }
    if pad > body.len() {
        return Err(bad("padding longer than the frame"));
    }
    Ok((priority, body[..body.len() - pad].to_vec()))
}

/// Frames a re-encoded header block as HEADERS plus CONTINUATIONs.
fn frame_block(
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: &[u8],
    out: &mut Vec<u8>,
) {
    let room = MAX_FRAME - if priority.is_some() { 5 } else { 0 };
    let (first, mut rest) = block.split_at(block.len().min(room));
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    if priority.is_some() {
        flags |= PRIORITY;
    }
    let len = first.len() + if priority.is_some() { 5 } else { 0 };
    FrameHead {
        len,
        kind: HEADERS,
        flags,
        stream,
    }
    .write(out);
    if let Some(p) = priority {
        out.extend_from_slice(&p);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = tail;
        FrameHead {
            len: chunk.len(),
            kind: CONTINUATION,
            flags: if rest.is_empty() { END_HEADERS } else { 0 },
            stream,
        }
        .write(out);
        out.extend_from_slice(chunk);
    }
}

/// Forwards the client-to-server direction, repairing header blocks.
async fn client_to_server<R, W>(mut client: R, mut server: W) -> io::Result<usize>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    client.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(bad("not an HTTP/2 connection preface"));
    }
    server.write_all(&preface).await?;
    let mut rewriter = HeaderRewriter::default();
    let mut out = Vec::new();
    while let Some((head, payload)) = read_frame(&mut client).await? {
        out.clear();
        match head.kind {
            HEADERS => {
                let (priority, mut block) = headers_fragment(&head, &payload)?;
                let mut flags = head.flags;
                while flags & END_HEADERS == 0 {
                    let (next, more) = read_frame(&mut client)
                        .await?
                        .ok_or_else(|| bad("connection closed inside a header block"))?;
                    if next.kind != CONTINUATION || next.stream != head.stream {
                        return Err(bad("header block interrupted by another frame"));
                    }
                    if block.len() + more.len() > MAX_HEADER_BLOCK {
                        return Err(bad("header block too large"));
                    }
                    block.extend_from_slice(&more);
                    flags = next.flags;
                }
                let block = rewriter.rewrite_block(&block)?;
                frame_block(
                    head.stream,
                    head.flags & END_STREAM != 0,
                    priority,
                    &block,
                    &mut out,
                );
            }
            CONTINUATION => return Err(bad("CONTINUATION without HEADERS")),
            _ => {
                head.write(&mut out);
                out.extend_from_slice(&payload);
            }
        }
        server.write_all(&out).await?;
        server.flush().await?;
    }
    server.shutdown().await?;
    Ok(rewriter.rewritten)
}

/// Relays one HTTP/2 connection between `client` and `server`, repairing
/// invalid `:authority` values on the way in. Returns when either side is
/// done; the error of the client-to-server direction, if any, is returned
/// (the connection is then closed on both sides).
pub async fn rewrite_authority<C, S>(client: C, server: S) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client_r, mut client_w) = tokio::io::split(client);
    let (mut server_r, server_w) = tokio::io::split(server);
    let up = client_to_server(client_r, server_w);
    let down = async {
        tokio::io::copy(&mut server_r, &mut client_w).await?;
        client_w.shutdown().await
    };
    tokio::select! {
        r = up => match r {
            Ok(n) => {
                tracing::trace!(rewritten = n, "client closed the registration connection");
                Ok(())
            }
            Err(e) => Err(e),
        },
        r = down => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(enc: &mut loona_hpack::Encoder<'static>, headers: &[(&str, &str)]) -> Vec<u8> {
        enc.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn request(authority: &str) -> Vec<(&'static str, String)> {
        vec![
            (":method", "POST".into()),
            (":scheme", "http".into()),
            (":path", "/pluginregistration.Registration/GetInfo".into()),
            (":authority", authority.into()),
            ("content-type", "application/grpc".into()),
            ("te", "trailers".into()),
        ]
    }

    #[test]
    fn paths_are_not_authorities_hosts_are() {
        assert!(!is_valid_authority(
            b"/var/lib/kubelet/plugins_registry/x-reg.sock"
        ));
        assert!(is_valid_authority(b"localhost"));
        assert!(is_valid_authority(b"example.org:443"));
    }

    /// A string literal without Huffman coding (RFC 7541 §5.2).
    fn literal(s: &str, out: &mut Vec<u8>) {
        assert!(s.len() < 127);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    /// grpc-go (x/net/http2/hpack) adds `:path` and `:authority` to its
    /// dynamic table on first use and names them by index afterwards; the
    /// rewriter must follow that table and still repair the value.
    #[test]
    fn repairs_literal_and_indexed_authorities() {
        let path =
            "/var/lib/kubelet/plugins_registry/sriovnetwork.k8snetworkplumbingwg.io-reg.sock";
        let rpc = "/pluginregistration.Registration/GetInfo";
        // :method POST, :scheme http, then literals with incremental indexing
        // on the static names :path (4) and :authority (1).
        let mut first = vec![0x83, 0x86, 0x44];
        literal(rpc, &mut first);
        first.push(0x41);
        literal(path, &mut first);
        // Same request again: dynamic entries 62 (:authority) and 63 (:path).
        let second = vec![0x83, 0x86, 0x80 | 63, 0x80 | 62];
        let mut server = loona_hpack::Decoder::new();
        let mut rw = HeaderRewriter::default();
        for block in [&first, &second, &second] {
            let got = server.decode(&rw.rewrite_block(block).unwrap()).unwrap();
            assert_eq!(
                got,
                vec![
                    (b":method".to_vec(), b"POST".to_vec()),
                    (b":scheme".to_vec(), b"http".to_vec()),
                    (b":path".to_vec(), rpc.as_bytes().to_vec()),
                    (b":authority".to_vec(), REPLACEMENT.as_bytes().to_vec()),
                ]
            );
        }
        assert_eq!(rw.rewritten, 3);
    }

    #[test]
    fn valid_authorities_pass_unchanged() {
        let mut client = loona_hpack::Encoder::new();
        let mut server = loona_hpack::Decoder::new();
        let mut rw = HeaderRewriter::default();
        let block = encode(&mut client, &[(":authority", "localhost"), ("x", "y")]);
        let got = server.decode(&rw.rewrite_block(&block).unwrap()).unwrap();
        assert_eq!(got[0], (b":authority".to_vec(), b"localhost".to_vec()));
        assert_eq!(rw.rewritten, 0);
    }

    #[test]
    fn garbage_blocks_are_errors_not_panics() {
        let mut rw = HeaderRewriter::default();
        // Index 200 does not exist in an empty dynamic table.
        assert!(rw.rewrite_block(&[0x80 | 0x7f, 0x49]).is_err());
        // A table size update above the protocol default.
        assert!(rw.rewrite_block(&[0x3f, 0xe1, 0xff, 0x03]).is_err());
    }

    #[test]
    fn padded_priority_headers_and_continuations_are_reassembled() {
        // HEADERS(PADDED|PRIORITY) + CONTINUATION carrying one block, then
        // a DATA frame, relayed through the rewriter.
        let path = "/run/x.sock";
        let mut client = loona_hpack::Encoder::new();
        let req = request(path);
        let block = client.encode(req.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let (a, b) = block.split_at(block.len() / 2);
        let mut wire = PREFACE.to_vec();
        let mut payload = vec![3u8]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 0, 16]); // priority
        payload.extend_from_slice(a);
        payload.extend_from_slice(&[0, 0, 0]);
        FrameHead {
            len: payload.len(),
            kind: HEADERS,
            flags: PADDED | PRIORITY,
            stream: 1,
        }
        .write(&mut wire);
        wire.extend_from_slice(&payload);
        FrameHead {
            len: b.len(),
            kind: CONTINUATION,
            flags: END_HEADERS,
            stream: 1,
        }
        .write(&mut wire);
        wire.extend_from_slice(b);
        FrameHead {
            len: 5,
            kind: 0x0,
            flags: END_STREAM,
            stream: 1,
        }
        .write(&mut wire);
        wire.extend_from_slice(&[0, 0, 0, 0, 0]);

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let mut out = Vec::new();
            let n = client_to_server(wire.as_slice(), &mut out).await.unwrap();
            assert_eq!(n, 1);
            out
        });
        assert_eq!(&out[..24], PREFACE);
        let mut rest = &out[24..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let head = FrameHead::parse(rest[..9].try_into().unwrap());
            frames.push((head, rest[9..9 + head.len].to_vec()));
            rest = &rest[9 + head.len..];
        }
        assert_eq!(frames.len(), 2, "one HEADERS, one DATA");
        let (h, p) = &frames[0];
        assert_eq!(h.kind, HEADERS);
        assert_eq!(h.flags, END_HEADERS | PRIORITY);
        assert_eq!(&p[..5], &[0, 0, 0, 0, 16]);
        let got = loona_hpack::Decoder::new().decode(&p[5..]).unwrap();
        assert!(got.contains(&(b":authority".to_vec(), b"localhost".to_vec())));
        assert!(got.contains(&(
            b":path".to_vec(),
            b"/pluginregistration.Registration/GetInfo".to_vec()
        )));
        assert_eq!(frames[1].0.kind, 0x0);
        assert_eq!(frames[1].0.flags, END_STREAM);
    }

    #[test]
    fn large_blocks_are_split_into_continuations() {
        let mut out = Vec::new();
        let block = vec![0x82u8; MAX_FRAME * 2 + 10];
        frame_block(7, true, None, &block, &mut out);
        let first = FrameHead::parse(out[..9].try_into().unwrap());
        assert_eq!(
            (first.kind, first.flags, first.len),
            (HEADERS, END_STREAM, MAX_FRAME)
        );
        let second = FrameHead::parse(out[9 + MAX_FRAME..18 + MAX_FRAME].try_into().unwrap());
        assert_eq!((second.kind, second.flags), (CONTINUATION, 0));
        let off = 2 * (9 + MAX_FRAME);
        let third = FrameHead::parse(out[off..off + 9].try_into().unwrap());
        assert_eq!(
            (third.kind, third.flags, third.len),
            (CONTINUATION, END_HEADERS, 10)
        );
    }
}
