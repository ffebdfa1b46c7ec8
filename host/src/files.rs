//! Atomic file writes: the one helper every component uses for the files it
//! leaves on the node (CNI state and device-info files, the device plugin's
//! device-info and CDI specs, the config daemon's journal, the DRA driver's
//! checkpoint).
//!
//! A write goes to a temp file in the target's directory
//! (`.<name>.tmp.<pid>`, created fresh with the file's mode whatever the
//! umask; one left by a killed process with the same pid is removed first),
//! then replaces the target with `rename(2)`, or, with
//! [`Publish::NoReplace`], appears under its name with `link(2)`, which never
//! replaces a file that appeared meanwhile. Readers see the old file or the
//! new one, never a part. The temp file is removed on every path.
//!
//! Durability policy: [`Durability::Crash`] (the file, then its directory,
//! fsynced) is for state that must survive a power loss because something
//! reads it after the reboot (the config daemon's journal, the DRA
//! checkpoint). Runtime files that describe the running pods
//! ([`Durability::Runtime`]) are not fsynced, as the Go plugins write them
//! (`os.WriteFile`): after a reboot the pods, namespaces and VFs they
//! describe are gone, and their readers treat an empty file as absent.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Whether the write must survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Not fsynced: files about running pods, recreated after a reboot.
    Runtime,
    /// The file and its directory fsynced before the call returns.
    Crash,
}

/// How the new file takes its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// `rename(2)`: replaces the file if it exists.
    Replace,
    /// `link(2)`: fails with `AlreadyExists` if the file exists.
    NoReplace,
}

/// How to write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// The file's mode (e.g. `0o600`).
    pub mode: u32,
    /// The mode of the directories created on the way (none created when
    /// `None`: the directory must exist).
    pub dir_mode: Option<u32>,
    /// See [`Durability`].
    pub durability: Durability,
    /// See [`Publish`].
    pub publish: Publish,
}

impl WriteOptions {
    /// A runtime file with `mode`, replacing, directories created `0o755`.
    pub const fn runtime(mode: u32) -> WriteOptions {
        WriteOptions {
            mode,
            dir_mode: Some(0o755),
            durability: Durability::Runtime,
            publish: Publish::Replace,
        }
    }

    /// A file that must survive a power loss, with `mode`, replacing,
    /// directories created `0o755`.
    pub const fn durable(mode: u32) -> WriteOptions {
        WriteOptions {
            durability: Durability::Crash,
            ..WriteOptions::runtime(mode)
        }
    }
}

/// Why a write failed: what was being done, on which path.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct WriteError {
    /// "creating directory", "writing", "renaming to", "linking to", "syncing".
    pub what: &'static str,
    /// The path the step acted on.
    pub path: PathBuf,
    /// The system's error.
    #[source]
    pub source: io::Error,
}

impl WriteError {
    /// The I/O error kind (e.g. `AlreadyExists` with [`Publish::NoReplace`]).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> io::Error {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// The temp file a write of `path` goes through.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp.{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically as `opts` says (module docs).
pub fn write_atomic(path: &Path, bytes: &[u8], opts: &WriteOptions) -> Result<(), WriteError> {
    fn err(what: &'static str, p: &Path) -> impl FnOnce(io::Error) -> WriteError + use<> {
        let path = p.to_path_buf();
        move |source| WriteError { what, path, source }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Some(mode) = opts.dir_mode {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(err("creating directory", dir))?;
    }
    let tmp = temp_path(path);
    let res = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .open(&tmp)
            .map_err(err("writing", &tmp))?;
        // create_new's mode is masked by the umask; set it exactly.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(opts.mode))
            .map_err(err("writing", &tmp))?;
        f.write_all(bytes).map_err(err("writing", &tmp))?;
        if opts.durability == Durability::Crash {
            f.sync_all().map_err(err("syncing", &tmp))?;
        }
        match opts.publish {
            Publish::Replace => fs::rename(&tmp, path).map_err(err("renaming to", path))?,
            Publish::NoReplace => fs::hard_link(&tmp, path).map_err(err("linking to", path))?,
        }
        if opts.durability == Durability::Crash {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(err("syncing", dir))?;
        }
        Ok(())
    })();
    // After a rename there is nothing left; after a link or a failure the
    // temp name goes.
    let _ = fs::remove_file(&tmp);
    res
}

/// An exclusive `flock(2)` lock on a file, held until dropped (the file
/// descriptor closes). Processes that share a file through it take turns;
/// a process killed while holding it releases it.
#[derive(Debug)]
pub struct FileLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Takes an exclusive lock on `path` (created `mode` if absent, never
/// truncated), waiting for another holder. For state that two processes
/// read-modify-write, such as the DRA checkpoint shared by the old and new
/// driver instances during a rolling update.
pub fn lock_exclusive(path: &Path, mode: u32) -> io::Result<FileLock> {
    let file = OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .mode(mode)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)?;
    let mut file = file;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
            Ok(lock) => return Ok(FileLock { _lock: lock }),
            Err((f, nix::errno::Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_file_lock_makes_the_next_holder_wait() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.lock");
        let first = lock_exclusive(&path, 0o600).unwrap();
        assert_eq!(mode(&path), 0o600);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            // A separate open file description: flock excludes it as it
            // would another process.
            let _second = lock_exclusive(&p, 0o600).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err(),
            "the second lock was granted while the first is held"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second lock is granted once the first is dropped");
        waiter.join().unwrap();
    }

    #[test]
    fn replaces_with_exact_modes_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a/b/state.json");
        let opts = WriteOptions {
            dir_mode: Some(0o700),
            ..WriteOptions::runtime(0o600)
        };
        write_atomic(&path, b"one", &opts).unwrap();
        write_atomic(&path, b"two", &opts).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&d.path().join("a/b")), 0o700);
        let left: Vec<_> = fs::read_dir(d.path().join("a/b")).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn durable_writes_and_stale_temp_files_are_fine() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("journal");
        // What a killed process with our pid left.
        fs::write(temp_path(&path), b"half").unwrap();
        write_atomic(&path, b"{}", &WriteOptions::durable(0o644)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert_eq!(mode(&path), 0o644);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn no_replace_refuses_an_existing_file_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("devinfo.json");
        let opts = WriteOptions {
            publish: Publish::NoReplace,
            ..WriteOptions::runtime(0o444)
        };
        write_atomic(&path, b"first", &opts).unwrap();
        let e = write_atomic(&path, b"second", &opts).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("linking to"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(mode(&path), 0o444);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_missing_directory_without_dir_mode_names_the_step() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("nope/file");
        let opts = WriteOptions {
            dir_mode: None,
            ..WriteOptions::runtime(0o600)
        };
        let e = write_atomic(&path, b"x", &opts).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("writing "), "{e}");
    }
}
