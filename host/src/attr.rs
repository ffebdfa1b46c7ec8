//! Reading sysfs attributes the way the kernel writes them: one small read,
//! values trimmed, symlinks resolved by name, and the errnos that mean "no
//! value" (a missing file, or an attribute the driver does not implement)
//! told apart from real failures.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads a whole attribute and trims surrounding whitespace. Sysfs returns
/// an attribute in one read (at most a page); the loop only continues while
/// the buffer fills, so the common case is open + read + close.
pub(crate) fn read_trimmed(path: &Path) -> io::Result<String> {
    read_all_trimmed(&mut File::open(path)?)
}

/// Whether an errno means "this attribute has no value here" rather than a
/// failure: missing file, or a netdev attribute the driver does not support
/// (`phys_port_name` gives `EOPNOTSUPP`, `carrier` and `speed` of a down
/// link give `EINVAL`).
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::EINVAL | libc::EOPNOTSUPP | libc::ENODATA | libc::ENODEV)
    )
}

/// An optional attribute: `None` when absent (see [`is_absent`]) or empty.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match read_trimmed(path) {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(s)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An optional attribute parsed with `parse`; unparsable values are errors.
pub(crate) fn read_opt_parsed<T>(
    path: &Path,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    match read_opt(path)? {
        None => Ok(None),
        Some(v) => parse(&v).map(Some).ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            value: v,
            expected,
        }),
    }
}

/// The last component of a symlink's target (`driver -> ../../bus/pci/drivers/ice`
/// gives `ice`), `None` when the link does not exist. The target need not
/// exist.
pub(crate) fn link_name(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_link(path) {
        Ok(t) => Ok(t.file_name().and_then(|n| n.to_str()).map(str::to_string)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`link_name`] with the path in the error.
pub(crate) fn read_link_name(path: &Path) -> Result<Option<String>> {
    link_name(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses `0x8086` or `8086` as hex.
pub fn parse_hex_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(s, 16).ok()
}

/// Parses a 16-bit hex id (`0x8086` or `8086`).
pub fn parse_hex_u16(s: &str) -> Option<u16> {
    parse_hex_u32(s).and_then(|v| u16::try_from(v).ok())
}

/// Sorted entry names of a directory; empty when it does not exist.
pub(crate) fn read_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if is_absent(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Ok(Vec::new());
        }
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The names in a directory, sorted; none when it cannot be read (absent,
/// vanished). Names that are not UTF-8 are left out.
pub(crate) fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `path/name`.
pub(crate) fn child(path: &Path, name: &str) -> PathBuf {
    path.join(name)
}

/// A directory opened once, whose entries are then opened
/// relative to it (`openat`, `readlinkat`): reading the ~20 attributes of a
/// function walks one path component each instead of the whole path through
/// the `bus/pci/devices` link. Paths are kept for error messages.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
    /// Whether the fd's directory offset has moved (a listing was read).
    listed: std::cell::Cell<bool>,
}

const DIR_FLAGS: nix::fcntl::OFlag = nix::fcntl::OFlag::O_RDONLY
    .union(nix::fcntl::OFlag::O_DIRECTORY)
    .union(nix::fcntl::OFlag::O_CLOEXEC);

impl Dir {
    /// Opens a directory (following symlinks).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(path, DIR_FLAGS, nix::sys::stat::Mode::empty())?;
        Ok(Self::from_fd(fd, path.to_path_buf()))
    }

    fn from_fd(fd: std::os::fd::OwnedFd, path: PathBuf) -> Dir {
        Dir {
            fd,
            path,
            listed: std::cell::Cell::new(false),
        }
    }

    /// `path/name`, for messages.
    pub(crate) fn child_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens a subdirectory.
    pub(crate) fn sub(&self, name: &str) -> io::Result<Dir> {
        let fd = nix::fcntl::openat(&self.fd, name, DIR_FLAGS, nix::sys::stat::Mode::empty())?;
        Ok(Self::from_fd(fd, self.path.join(name)))
    }

    /// Reads an attribute, trimmed (see [`read_trimmed`]).
    pub(crate) fn read_raw(&self, name: &str) -> io::Result<String> {
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        read_all_trimmed(&mut File::from(fd))
    }

    /// An optional attribute (see [`read_opt`]).
    pub(crate) fn opt(&self, name: &str) -> Result<Option<String>> {
        match self.read_raw(name) {
            Ok(s) if s.is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(Error::Read {
                path: self.child_path(name),
                source,
            }),
        }
    }

    /// An optional attribute parsed with `parse` (see [`read_opt_parsed`]).
    pub(crate) fn opt_parsed<T>(
        &self,
        name: &str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.opt(name)? {
            None => Ok(None),
            Some(v) => parse(&v).map(Some).ok_or_else(|| Error::Parse {
                path: self.child_path(name),
                value: v,
                expected,
            }),
        }
    }

    /// The last component of a symlink's target; `None` when there is no
    /// such link.
    pub(crate) fn link_name(&self, name: &str) -> Result<Option<String>> {
        let target = match nix::fcntl::readlinkat(&self.fd, name) {
            Ok(t) => t,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => {
                return Err(Error::Read {
                    path: self.child_path(name),
                    source: e.into(),
                });
            }
        };
        let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str());
        let last = target.rsplit(|b| *b == b'/').next().unwrap_or(target);
        Ok(std::str::from_utf8(last).ok().map(str::to_string))
    }

    /// Sorted entry names (without `.` and `..`) of this directory, read
    /// with `getdents64` on the directory's own fd.
    pub(crate) fn names(&self) -> Result<Vec<String>> {
        if self.listed.replace(true) {
            // Rewinds the directory stream.
            if let Err(e) = nix::unistd::lseek(&self.fd, 0, nix::unistd::Whence::SeekSet) {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source: e.into(),
                });
            }
        }
        let mut buf = vec![0u64; 1024]; // 8 KiB, 8-byte aligned
        let mut out = Vec::new();
        loop {
            // No safe wrapper reads a directory fd's entries in place (nix's
            // Dir goes through libc's readdir and its own buffer).
            // SAFETY: valid fd; the buffer is writable for its whole length.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                    buf.as_mut_ptr(),
                    buf.len() * 8,
                )
            };
            if n < 0 {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source: io::Error::last_os_error(),
                });
            }
            if n == 0 {
                break;
            }
            // SAFETY: the kernel wrote `n` bytes of the buffer.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            parse_dirents(bytes, &mut out);
        }
        out.sort();
        Ok(out)
    }

    /// The subdirectory `name` and its entry names; `None` when it does not
    /// exist (or is not a directory).
    pub(crate) fn listing(&self, name: &str) -> Result<Option<(Dir, Vec<String>)>> {
        match self.sub(name) {
            Ok(d) => {
                let names = d.names()?;
                Ok(Some((d, names)))
            }
            Err(e) if is_absent(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(source) => Err(Error::Read {
                path: self.child_path(name),
                source,
            }),
        }
    }
}

fn read_all_trimmed(f: &mut File) -> io::Result<String> {
    let mut buf = [0u8; 512];
    let mut out: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf)?;
        out.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            break;
        }
    }
    Ok(attribute_text(&out))
}

/// An attribute's bytes as text: invalid UTF-8 replaced, surrounding
/// whitespace trimmed.
pub fn attribute_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Appends the entry names (without `.` and `..`) of a `getdents64` buffer
/// to `out`. A record shorter than its header or running past the buffer
/// ends the parse.
pub fn parse_dirents(bytes: &[u8], out: &mut Vec<String>) {
    // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
    const HEADER: usize = 19;
    let mut off = 0usize;
    while off + HEADER <= bytes.len() {
        let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
        if reclen < HEADER || off + reclen > bytes.len() {
            break;
        }
        let name = &bytes[off + HEADER..off + reclen];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        if name != b"."
            && name != b".."
            && let Ok(s) = std::str::from_utf8(name)
        {
            out.push(s.to_string());
        }
        off += reclen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record whose length is shorter than the dirent header (found while
    /// writing the `sysfs_attr` fuzz target) ends the parse instead of
    /// panicking on a reversed slice.
    #[test]
    fn dirent_record_shorter_than_its_header_ends_the_parse() {
        let mut rec = vec![0u8; 24];
        rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
        rec[19..22].copy_from_slice(b"eth");
        let mut short = vec![0u8; 24];
        short[16..18].copy_from_slice(&5u16.to_ne_bytes());
        rec.extend_from_slice(&short);
        let mut out = Vec::new();
        parse_dirents(&rec, &mut out);
        assert_eq!(out, ["eth"]);
    }

    #[test]
    fn hex_ids_parse_with_and_without_prefix() {
        assert_eq!(parse_hex_u16("0x8086\n"), Some(0x8086));
        assert_eq!(parse_hex_u16("1889"), Some(0x1889));
        assert_eq!(parse_hex_u16("0x10000"), None);
        assert_eq!(parse_hex_u32("0x020000"), Some(0x020000));
        assert_eq!(parse_hex_u32("zz"), None);
    }

    #[test]
    fn directory_listings_span_several_getdents_calls() {
        let tmp = tempfile::tempdir().unwrap();
        let mut want: Vec<String> = (0..600)
            .map(|i| format!("virtfn{i}-with-a-rather-long-name-{i:04}"))
            .collect();
        for n in &want {
            std::fs::write(tmp.path().join(n), "").unwrap();
        }
        std::fs::create_dir(tmp.path().join("net")).unwrap();
        want.push("net".into());
        want.sort();
        let dir = Dir::open(tmp.path()).unwrap();
        assert_eq!(dir.names().unwrap(), want);
        assert_eq!(dir.names().unwrap(), want, "a second listing rewinds");
        let (_, empty) = dir.listing("net").unwrap().unwrap();
        assert!(empty.is_empty());
        assert!(dir.listing("missing").unwrap().is_none());
        let file = want.iter().find(|n| n.starts_with("virtfn")).unwrap();
        assert!(
            dir.listing(file).unwrap().is_none(),
            "a file is not a listing"
        );
        assert_eq!(dir.opt(file).unwrap(), None, "an empty attribute is None");
        assert_eq!(dir.link_name("missing").unwrap(), None);
    }

    #[test]
    fn long_attributes_are_read_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a");
        let long = "x".repeat(2000);
        std::fs::write(&p, format!("  {long}\n")).unwrap();
        assert_eq!(read_trimmed(&p).unwrap(), long);
        std::fs::write(&p, "\n").unwrap();
        assert_eq!(read_opt(&p).unwrap(), None);
        assert_eq!(read_opt(&tmp.path().join("missing")).unwrap(), None);
    }
}
