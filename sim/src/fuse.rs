//! The FUSE server: serves a subtree of the simulated kernel's in-memory
//! filesystem (`sys` at `ROOT/sys`, `dev/vfio` at `ROOT/dev/vfio`) and turns
//! writes into [`SimKernel::store`] calls.
//!
//! Entries and attributes are never cached by the kernel (TTL 0) and files
//! are opened with `direct_io`, so every read sees the simulated kernel's
//! current state, as with sysfs. Regular files report a size of 4096 under
//! `sys` (as sysfs does).

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    Notifier, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::kernel::{SimKernel, StoreEffect};
use crate::memfs::{MemFs, NodeKind};
use crate::uevent::UeventSender;

/// How long the kernel may cache entries and attributes. Removed entries
/// are invalidated explicitly (see [`Shared::take_invalidations`]) before
/// the write that removed them returns, so lookups never see stale names.
const TTL: Duration = Duration::from_secs(1);

/// The simulated kernel and where its uevents go, shared by the mounts.
#[derive(Debug)]
pub struct Shared {
    pub kernel: SimKernel<MemFs>,
    pub uevents: Option<UeventSender>,
    /// Set at shutdown: late work (delayed VF creation) is dropped.
    pub stopped: bool,
    /// Per mount: the subtree's path (`sys`, `dev/vfio`), its root inode
    /// and the session's notifier.
    pub notifiers: Vec<(String, u64, Notifier)>,
}

/// The shared state behind a lock.
pub type SharedState = Arc<Mutex<Shared>>;

/// Locks the state, recovering from a poisoned lock (a panicking test must
/// not wedge the mount's cleanup).
pub fn lock(state: &SharedState) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The kernel dentries to invalidate for entries removed since the last
    /// call: (notifier, FUSE parent inode, name). Call the notifiers after
    /// releasing the lock.
    pub fn take_invalidations(&mut self) -> Vec<(Notifier, INodeNo, String)> {
        let removed = self.kernel.sink().take_removed();
        let mut out = Vec::new();
        for (parent, name) in removed {
            let Some(ppath) = self.kernel.sink().path_of(parent) else {
                continue; // the parent went too; its own entry is listed
            };
            for (sub, _top, notifier) in &self.notifiers {
                if ppath == *sub {
                    out.push((notifier.clone(), INodeNo(1), name.clone()));
                } else if ppath.starts_with(&format!("{sub}/")) {
                    out.push((notifier.clone(), INodeNo(parent), name.clone()));
                }
            }
        }
        out
    }

    /// Sends the uevents the kernel emitted since the last flush.
    pub fn flush_events(&mut self) {
        let events = self.kernel.take_events();
        if let Some(s) = &self.uevents {
            for e in &events {
                s.send(e);
            }
        }
    }
}

/// One FUSE mount serving the subtree rooted at `top`.
#[derive(Debug)]
pub struct SubtreeFs {
    state: SharedState,
    /// Inode of the subtree root in the in-memory filesystem.
    top: u64,
    /// Size reported for regular files.
    file_size: u64,
    boot: SystemTime,
}

impl SubtreeFs {
    /// Serves the subtree at `path` (`sys`, `dev/vfio`) of the shared
    /// filesystem; `file_size` is what `stat` reports for files.
    pub fn new(state: SharedState, path: &str, file_size: u64) -> Option<Self> {
        let top = lock(&state).kernel.sink().resolve(path)?;
        Some(Self {
            state,
            top,
            file_size,
            boot: SystemTime::now(),
        })
    }

    /// The in-memory inode this mount's root maps to.
    pub fn top(&self) -> u64 {
        self.top
    }

    fn ino_in(&self, fuse: INodeNo) -> u64 {
        if fuse.0 == 1 { self.top } else { fuse.0 }
    }

    fn ino_out(&self, ino: u64) -> INodeNo {
        if ino == self.top {
            INodeNo(1)
        } else {
            INodeNo(ino)
        }
    }

    fn attr(&self, fs: &MemFs, ino: u64) -> Option<FileAttr> {
        let node = fs.get(ino)?;
        let (kind, perm, size, nlink) = match &node.kind {
            NodeKind::Dir(_) => (FileType::Directory, 0o755, 0, 2),
            NodeKind::File { writable, .. } => (
                FileType::RegularFile,
                if *writable { 0o644 } else { 0o444 },
                self.file_size,
                1,
            ),
            NodeKind::Symlink(t) => (FileType::Symlink, 0o777, t.len() as u64, 1),
        };
        Some(FileAttr {
            ino: self.ino_out(ino),
            size,
            blocks: 0,
            atime: self.boot,
            mtime: self.boot,
            ctime: self.boot,
            crtime: self.boot,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }
}

/// Tells the kernel to drop cached dentries (outside the state lock: the
/// kernel may wait for lookups that need it).
pub fn invalidate(list: Vec<(Notifier, INodeNo, String)>) {
    for (n, parent, name) in list {
        if let Err(e) = n.inval_entry(parent, OsStr::new(&name)) {
            // ENOENT: the kernel had not cached it.
            tracing::trace!(%name, error = %e, "dentry invalidation");
        }
    }
}

fn errno(e: i32) -> Errno {
    Errno::from_i32(e)
}

impl Filesystem for SubtreeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut st = lock(&self.state);
        let fs = st.kernel.sink();
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        match fs
            .lookup(self.ino_in(parent), name)
            .and_then(|i| self.attr(fs, i))
        {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut st = lock(&self.state);
        match self.attr(st.kernel.sink(), self.ino_in(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Truncation (O_TRUNC from `echo > attr`) and time changes are
        // accepted and ignored, as sysfs does.
        let mut st = lock(&self.state);
        match self.attr(st.kernel.sink(), self.ino_in(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let mut st = lock(&self.state);
        match st.kernel.sink().get(self.ino_in(ino)).map(|n| &n.kind) {
            Some(NodeKind::Symlink(t)) => reply.data(t.as_bytes()),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = lock(&self.state);
        match st.kernel.sink().get(self.ino_in(ino)).map(|n| &n.kind) {
            Some(NodeKind::File { writable, .. }) => {
                let wants_write = flags.acc_mode() != OpenAccMode::O_RDONLY;
                if wants_write && !writable {
                    // kernfs: an attribute without a store method.
                    return reply.error(Errno::EACCES);
                }
                reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO)
            }
            Some(NodeKind::Dir(_)) => reply.error(Errno::EISDIR),
            Some(NodeKind::Symlink(_)) => reply.error(Errno::ELOOP),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut st = lock(&self.state);
        match st.kernel.sink().get(self.ino_in(ino)).map(|n| &n.kind) {
            Some(NodeKind::File { content, .. }) => {
                let b = content.as_bytes();
                let start = (offset as usize).min(b.len());
                let end = (start + size as usize).min(b.len());
                reply.data(&b[start..end])
            }
            Some(_) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let ino = self.ino_in(ino);
        let (path, delay) = {
            let mut st = lock(&self.state);
            let fs = st.kernel.sink();
            match fs.get(ino).map(|n| &n.kind) {
                Some(NodeKind::File { writable: true, .. }) => {}
                Some(NodeKind::File { .. }) => return reply.error(Errno::EACCES),
                Some(_) => return reply.error(Errno::EISDIR),
                None => return reply.error(Errno::ENOENT),
            }
            let Some(path) = fs.path_of(ino) else {
                return reply.error(Errno::ENOENT);
            };
            let delay = st.kernel.write_delay(&path, &String::from_utf8_lossy(data));
            (path, delay)
        };
        if let Some(d) = delay {
            // Fault injection: the write blocks; other requests go on.
            std::thread::sleep(d);
        }
        let text = String::from_utf8_lossy(data);
        let mut st = lock(&self.state);
        let result = st.kernel.store(&path, &text);
        st.flush_events();
        let inval = st.take_invalidations();
        drop(st);
        invalidate(inval);
        match result {
            Ok(effect) => {
                if let StoreEffect::LateVfs {
                    pf,
                    generation,
                    after,
                } = effect
                {
                    let state = self.state.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(after);
                        let mut st = lock(&state);
                        if st.stopped {
                            return;
                        }
                        if let Err(e) = st.kernel.create_late_vfs(&pf, generation) {
                            tracing::warn!(error = %e, "late VF creation failed");
                        }
                        st.flush_events();
                        let inval = st.take_invalidations();
                        drop(st);
                        invalidate(inval);
                    });
                }
                tracing::debug!(%path, data = %text.trim_end(), "store");
                reply.written(data.len() as u32)
            }
            Err(e) => {
                tracing::info!(%path, data = %text.trim_end(), errno = e.errno, reason = %e.reason, "store refused");
                reply.error(errno(e.errno))
            }
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = lock(&self.state);
        let fs = st.kernel.sink();
        let me = self.ino_in(ino);
        let Some(node) = fs.get(me) else {
            return reply.error(Errno::ENOENT);
        };
        let NodeKind::Dir(entries) = &node.kind else {
            return reply.error(Errno::ENOTDIR);
        };
        let parent = if me == self.top { me } else { node.parent };
        let mut all: Vec<(u64, FileType, &str)> = vec![
            (me, FileType::Directory, "."),
            (parent, FileType::Directory, ".."),
        ];
        for (name, i) in entries {
            let kind = match fs.get(*i).map(|n| &n.kind) {
                Some(NodeKind::Dir(_)) => FileType::Directory,
                Some(NodeKind::Symlink(_)) => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            all.push((*i, kind, name.as_str()));
        }
        for (idx, (i, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(self.ino_out(i), idx as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok()
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::NO_XATTR)
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        // sysfs has no create: VFS returns EACCES.
        reply.error(Errno::EACCES)
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EACCES)
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM)
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM)
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM)
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM)
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EPERM)
    }
}
