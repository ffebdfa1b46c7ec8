//! The journal under `--state-dir`: which PFs this daemon configured (with
//! their MTU and VF count before it first touched them) and the step in
//! progress on each. Written atomically (temp file, fsync, rename) before
//! every step, so after a crash the daemon knows what it was doing and which
//! PFs are its own to reset when they leave the spec. PFs it never touched
//! are never reset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sriov_host::files::WriteOptions;

/// The journal's file name under the state dir.
pub const JOURNAL_FILE: &str = "journal.json";

/// A PF this daemon configured, and what it was like before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PfRecord {
    /// PF netdev name when first configured.
    #[serde(default)]
    pub name: String,
    /// PF MTU before this daemon changed anything.
    #[serde(default)]
    pub original_mtu: Option<u32>,
    /// `sriov_numvfs` before this daemon changed anything.
    #[serde(default)]
    pub original_num_vfs: u32,
}

/// The journal's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalState {
    /// PFs configured by this daemon, by PCI address.
    #[serde(default)]
    pub configured: BTreeMap<String, PfRecord>,
    /// The step running on a PF (PCI address -> description); left behind
    /// only by a crash.
    #[serde(default)]
    pub in_progress: BTreeMap<String, String>,
}

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("reading the journal {}: {source}; fix or delete it (the daemon then resets no PF it configured before)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal {} is not valid JSON: {source}; fix or delete it", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the journal {}: {source}; check that --state-dir is writable", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The journal: in memory, and on disk unless it is a dry run.
#[derive(Debug)]
pub struct Journal {
    path: Option<PathBuf>,
    state: Mutex<JournalState>,
}

impl Journal {
    /// Opens (or starts) the journal in `dir`. `persist = false` keeps it in
    /// memory only (dry runs).
    pub fn open(dir: &Path, persist: bool) -> Result<Self, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| JournalError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => JournalState::default(),
            Err(source) => return Err(JournalError::Read { path, source }),
        };
        Ok(Self {
            path: persist.then_some(path),
            state: Mutex::new(state),
        })
    }

    /// A journal that is never written.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(JournalState::default()),
        }
    }

    /// A copy of the content.
    pub fn state(&self) -> JournalState {
        self.state.lock().expect("journal lock").clone()
    }

    /// The PFs this daemon configured.
    pub fn configured(&self) -> BTreeMap<String, PfRecord> {
        self.state().configured
    }

    /// Steps a crash interrupted.
    pub fn interrupted(&self) -> BTreeMap<String, String> {
        self.state().in_progress
    }

    /// [`interrupted`](Self::interrupted), each step logged as the warning
    /// a run that starts after a crash gives.
    pub fn warn_interrupted(&self) -> BTreeMap<String, String> {
        let steps = self.interrupted();
        for (pf, step) in &steps {
            tracing::warn!(
                pf,
                step,
                "the last run was interrupted during this step; converging from the current state"
            );
        }
        steps
    }

    fn update(&self, f: impl FnOnce(&mut JournalState)) -> Result<(), JournalError> {
        let mut st = self.state.lock().expect("journal lock");
        let before = st.clone();
        f(&mut st);
        if *st == before {
            return Ok(());
        }
        if let Some(path) = &self.path {
            write_atomic(
                path,
                &serde_json::to_vec_pretty(&*st).expect("journal serializes"),
            )
            .map_err(|source| JournalError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Records that this daemon is about to configure a PF (keeps the first
    /// record: the state before it ever touched the PF).
    pub fn adopt(&self, pci: &str, record: &PfRecord) -> Result<(), JournalError> {
        self.update(|st| {
            st.configured
                .entry(pci.to_string())
                .or_insert_with(|| record.clone());
        })
    }

    /// Marks a step as running on a PF.
    pub fn begin(&self, pci: &str, step: &str) -> Result<(), JournalError> {
        self.update(|st| {
            st.in_progress.insert(pci.to_string(), step.to_string());
        })
    }

    /// Marks a PF's step as done.
    pub fn end(&self, pci: &str) -> Result<(), JournalError> {
        self.update(|st| {
            st.in_progress.remove(pci);
        })
    }

    /// Clears the interrupted step of PFs this run had nothing to do on:
    /// the kernel finished the step (or the node was changed since), so
    /// the record is no longer news. PFs with steps clear theirs as their
    /// steps run. Writes only when something is cleared.
    pub fn settle_interrupted<'a>(
        &self,
        idle: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), JournalError> {
        let stale: Vec<&str> = {
            let st = self.state();
            idle.into_iter()
                .filter(|p| st.in_progress.contains_key(*p))
                .collect()
        };
        if stale.is_empty() {
            return Ok(());
        }
        self.update(|st| {
            for p in stale {
                st.in_progress.remove(p);
            }
        })
    }

    /// Forgets a PF (after its reset).
    pub fn forget(&self, pci: &str) -> Result<(), JournalError> {
        self.update(|st| {
            st.configured.remove(pci);
            st.in_progress.remove(pci);
        })
    }
}

/// Writes a file atomically and durably (it is read after a reboot):
/// [`sriov_host::files::write_atomic`] with [`WriteOptions::durable`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    sriov_host::files::write_atomic(path, bytes, &WriteOptions::durable(0o644))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_keeps_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), true).unwrap();
        let first = PfRecord {
            name: "ens1f0".into(),
            original_mtu: Some(1500),
            original_num_vfs: 4,
        };
        j.adopt("0000:3b:00.0", &first).unwrap();
        j.adopt(
            "0000:3b:00.0",
            &PfRecord {
                original_mtu: Some(9000),
                ..first.clone()
            },
        )
        .unwrap();
        j.begin("0000:3b:00.0", "set sriov_numvfs from 4 to 8")
            .unwrap();
        drop(j);
        let j = Journal::open(dir.path(), true).unwrap();
        assert_eq!(j.configured()["0000:3b:00.0"], first);
        assert_eq!(
            j.interrupted()["0000:3b:00.0"],
            "set sriov_numvfs from 4 to 8"
        );
        j.end("0000:3b:00.0").unwrap();
        j.forget("0000:3b:00.0").unwrap();
        let j = Journal::open(dir.path(), true).unwrap();
        assert_eq!(j.state(), JournalState::default());
    }

    #[test]
    fn settling_clears_only_the_idle_pfs_and_writes_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), true).unwrap();
        j.begin("0000:3b:00.0", "set sriov_numvfs from 2 to 4")
            .unwrap();
        j.begin("0000:3b:00.1", "bind VFs 0-3 to vfio-pci").unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        j.settle_interrupted(["0000:3b:00.0", "0000:99:00.0"])
            .unwrap();
        let j = Journal::open(dir.path(), true).unwrap();
        assert_eq!(
            j.interrupted().into_keys().collect::<Vec<_>>(),
            ["0000:3b:00.1"]
        );
        // Nothing to clear: no write.
        std::fs::remove_file(&path).unwrap();
        j.settle_interrupted(["0000:3b:00.0"]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn dry_run_journal_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), false).unwrap();
        j.begin("0000:3b:00.0", "x").unwrap();
        assert!(!dir.path().join(JOURNAL_FILE).exists());
    }

    #[test]
    fn corrupt_journal_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), "{").unwrap();
        let e = Journal::open(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("journal.json"), "{e}");
    }
}
