//! An in-memory filesystem (a small inode table: directories, files that
//! are writable or not, symlinks) that the simulated kernel writes its tree
//! into and the FUSE server serves.

use std::collections::{BTreeMap, HashMap};
use std::io;

use crate::tree::TreeSink;

/// Inode number of the root directory (the host root).
pub const ROOT_INO: u64 = 1;

/// What an inode is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Entries by name.
    Dir(BTreeMap<String, u64>),
    /// A sysfs attribute: its current content and whether it takes writes.
    File { content: String, writable: bool },
    /// A symlink with its (relative) target.
    Symlink(String),
}

/// One inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Parent directory inode (the root is its own parent).
    pub parent: u64,
    /// Name in the parent.
    pub name: String,
    pub kind: NodeKind,
}

/// The inode table. Inode numbers are never reused, so a stale handle to a
/// removed node reads as gone rather than as another node.
#[derive(Debug, Clone)]
pub struct MemFs {
    nodes: HashMap<u64, Node>,
    next: u64,
    /// (parent inode, name) of entries removed or replaced since the last
    /// [`MemFs::take_removed`], so that a FUSE server can invalidate the
    /// kernel's cached dentries.
    removed: Vec<(u64, String)>,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// An empty filesystem with a root directory.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Node {
                parent: ROOT_INO,
                name: String::new(),
                kind: NodeKind::Dir(BTreeMap::new()),
            },
        );
        Self {
            nodes,
            next: ROOT_INO + 1,
            removed: Vec::new(),
        }
    }

    /// The inode `ino`, if it exists.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The number of inodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The entry `name` of directory `parent`.
    pub fn lookup(&self, parent: u64, name: &str) -> Option<u64> {
        match &self.nodes.get(&parent)?.kind {
            NodeKind::Dir(entries) => entries.get(name).copied(),
            _ => None,
        }
    }

    /// The path of `ino` relative to the root (`sys/bus/pci`), `""` for the
    /// root.
    pub fn path_of(&self, ino: u64) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            let n = self.nodes.get(&cur)?;
            parts.push(n.name.as_str());
            cur = n.parent;
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// The inode at `path` (relative, `/`-separated), without following
    /// symlinks.
    pub fn resolve(&self, path: &str) -> Option<u64> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .try_fold(ROOT_INO, |ino, name| self.lookup(ino, name))
    }

    /// Entries (parent inode, name) removed or replaced since the last call.
    pub fn take_removed(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.removed)
    }

    fn insert(&mut self, parent: u64, name: &str, kind: NodeKind) -> io::Result<u64> {
        if let Some(old) = self.lookup(parent, name) {
            self.remove_tree(old);
        }
        let ino = self.next;
        self.next += 1;
        match self.nodes.get_mut(&parent).map(|n| &mut n.kind) {
            Some(NodeKind::Dir(entries)) => {
                entries.insert(name.to_string(), ino);
            }
            _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
        self.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_string(),
                kind,
            },
        );
        Ok(ino)
    }

    fn remove_tree(&mut self, ino: u64) {
        let Some(node) = self.nodes.remove(&ino) else {
            return;
        };
        self.removed.push((node.parent, node.name.clone()));
        if let Some(NodeKind::Dir(entries)) = self.nodes.get_mut(&node.parent).map(|n| &mut n.kind)
            && entries.get(&node.name) == Some(&ino)
        {
            entries.remove(&node.name);
        }
        let mut stack = match node.kind {
            NodeKind::Dir(entries) => entries.into_values().collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        while let Some(i) = stack.pop() {
            if let Some(Node {
                kind: NodeKind::Dir(entries),
                ..
            }) = self.nodes.remove(&i)
            {
                stack.extend(entries.into_values());
            }
        }
    }

    /// Splits `path` into its parent directory (created) and last name.
    fn parent_of<'a>(&mut self, path: &'a str) -> io::Result<(u64, &'a str)> {
        let path = path.trim_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        }
        Ok((self.mkdir_ino(dir)?, name))
    }

    fn mkdir_ino(&mut self, path: &str) -> io::Result<u64> {
        let mut cur = ROOT_INO;
        for name in path.split('/').filter(|s| !s.is_empty()) {
            cur = match self.lookup(cur, name) {
                Some(i) if matches!(self.nodes[&i].kind, NodeKind::Dir(_)) => i,
                Some(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                None => self.insert(cur, name, NodeKind::Dir(BTreeMap::new()))?,
            };
        }
        Ok(cur)
    }
}

impl TreeSink for MemFs {
    fn mkdir_all(&mut self, path: &str) -> io::Result<()> {
        self.mkdir_ino(path).map(|_| ())
    }

    fn write_file(&mut self, path: &str, content: &str, writable: bool) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        // Rewriting an attribute keeps its inode, as sysfs does.
        if let Some(ino) = self.lookup(parent, name)
            && let Some(Node {
                kind:
                    NodeKind::File {
                        content: c,
                        writable: w,
                    },
                ..
            }) = self.nodes.get_mut(&ino)
        {
            *c = content.to_string();
            *w = writable;
            return Ok(());
        }
        self.insert(
            parent,
            name,
            NodeKind::File {
                content: content.to_string(),
                writable,
            },
        )
        .map(|_| ())
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        self.insert(parent, name, NodeKind::Symlink(target.to_string()))
            .map(|_| ())
    }

    fn remove_all(&mut self, path: &str) -> io::Result<()> {
        if let Some(ino) = self.resolve(path)
            && ino != ROOT_INO
        {
            self.remove_tree(ino);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeSpec;

    #[test]
    fn files_links_and_removal() {
        let mut fs = MemFs::new();
        fs.write_file("sys/a/b", "1\n", true).unwrap();
        fs.symlink("sys/c", "a/b").unwrap();
        let b = fs.resolve("sys/a/b").unwrap();
        assert_eq!(fs.path_of(b).unwrap(), "sys/a/b");
        fs.write_file("sys/a/b", "2\n", true).unwrap();
        assert_eq!(fs.resolve("sys/a/b"), Some(b), "rewrites keep the inode");
        assert!(
            matches!(&fs.get(fs.resolve("sys/c").unwrap()).unwrap().kind, NodeKind::Symlink(t) if t == "a/b")
        );
        fs.remove_all("sys/a").unwrap();
        assert!(fs.resolve("sys/a/b").is_none());
        assert!(fs.get(b).is_none());
        assert!(fs.write_file("sys/c/x", "", false).is_err());
    }

    /// The in-memory tree and the on-disk tree of a node are the same.
    #[test]
    fn same_layout_as_the_static_tree() {
        let spec = NodeSpec::mixed();
        let tmp = tempfile::tempdir().unwrap();
        crate::kernel::write_static_tree(tmp.path(), &spec).unwrap();
        let mut k = crate::kernel::SimKernel::boot(MemFs::new(), spec, None).unwrap();
        let fs = k.sink().clone();
        let mut on_disk = Vec::new();
        for top in ["sys", "dev"] {
            walk(&tmp.path().join(top), top, &mut on_disk);
        }
        on_disk.sort();
        let mut in_mem = Vec::new();
        for top in ["sys", "dev"] {
            walk_mem(&fs, fs.resolve(top).unwrap(), top, &mut in_mem);
        }
        in_mem.sort();
        assert_eq!(on_disk, in_mem);
    }

    fn walk(p: &std::path::Path, rel: &str, out: &mut Vec<(String, String)>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        if m.file_type().is_symlink() {
            out.push((
                rel.into(),
                format!("-> {}", std::fs::read_link(p).unwrap().display()),
            ));
        } else if m.is_dir() {
            out.push((rel.into(), "dir".into()));
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                walk(&e.path(), &format!("{rel}/{name}"), out);
            }
        } else {
            out.push((rel.into(), std::fs::read_to_string(p).unwrap()));
        }
    }

    fn walk_mem(fs: &MemFs, ino: u64, rel: &str, out: &mut Vec<(String, String)>) {
        match &fs.get(ino).unwrap().kind {
            NodeKind::Symlink(t) => out.push((rel.into(), format!("-> {t}"))),
            NodeKind::File { content, .. } => out.push((rel.into(), content.clone())),
            NodeKind::Dir(entries) => {
                out.push((rel.into(), "dir".into()));
                for (name, i) in entries {
                    walk_mem(fs, *i, &format!("{rel}/{name}"), out);
                }
            }
        }
    }
}
