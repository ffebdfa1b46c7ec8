//! Failure injection for the project's tests, compiled only with the
//! `test-hooks` feature (which only the package's own tests turn on; any
//! build a user runs ignores these variables):
//!
//! - `SRIOV_CNI_TEST_FAIL_AFTER=<step>`: ADD returns an error right after
//!   `<step>` (and undoes what it did, as for any failure);
//! - `SRIOV_CNI_TEST_CRASH_AFTER=<step>`: the process kills itself with
//!   SIGKILL right after `<step>` (nothing is undone; DEL must clean up).
//!
//! Steps, in ADD order: `state`, `vf-settings`, `move`, `link`, `ipam`,
//! `addresses`.

use crate::error::Result;

/// Called after each ADD step.
#[cfg(feature = "test-hooks")]
pub fn checkpoint(step: &str) -> Result<()> {
    use crate::error::{CniError, Code};
    if std::env::var("SRIOV_CNI_TEST_CRASH_AFTER").as_deref() == Ok(step) {
        tracing::warn!(step, "test hook: killing the process");
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
    if std::env::var("SRIOV_CNI_TEST_FAIL_AFTER").as_deref() == Ok(step) {
        return Err(CniError::new(
            Code::TryAgain,
            format!("test hook: injected failure after step {step}"),
            "",
        ));
    }
    Ok(())
}

/// Called after each ADD step (no-op without the `test-hooks` feature).
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn checkpoint(_step: &str) -> Result<()> {
    Ok(())
}
