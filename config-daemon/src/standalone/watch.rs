//! `apply --watch`: keep the node converged. Re-applies when the policy file
//! changes, when a kernel uevent says a PCI function or netdev changed (drift:
//! someone changed a VF count or driver by hand), and on the
//! [`RunSchedule`]'s timer (resync, or retry with backoff after a failure).

use std::time::Instant;

use crate::events::{FileStamp, RECHECK, RunSchedule, Source, Trigger};

use super::{RunReport, StandaloneConfig, StandaloneError, WatchOptions, run_once};

/// Runs until the process is stopped. `on_run` sees every run's report (or
/// the error that stopped it before any change) and why it ran.
pub fn watch(
    cfg: &StandaloneConfig,
    opts: &WatchOptions,
    mut on_run: impl FnMut(Trigger, &Result<RunReport, StandaloneError>),
) -> ! {
    let mut source = Source::open(cfg.host_root.path());
    let mut schedule = RunSchedule::new(opts.resync, opts.backoff, opts.max_backoff);
    let mut trigger = Trigger::Start;
    loop {
        let stamp = FileStamp::of(&cfg.policies);
        let result = run_once(cfg);
        // Events queued during the run: ours, or drift that happened while
        // we scanned.
        let events_during_run = source.drain();
        if trigger.checks_drift()
            && let Ok(r) = &result
            && !r.plan.is_empty()
        {
            tracing::warn!(
                ?trigger,
                "drift: the node no longer matched the spec; repaired:\n{}",
                r.plan.render()
            );
        }
        on_run(trigger, &result);
        let failed = match &result {
            Ok(r) => r.failed(),
            Err(_) => true,
        };
        let next = schedule.after_run(failed, events_during_run);
        let deadline = Instant::now() + next.after;
        trigger = loop {
            let now = Instant::now();
            if now >= deadline {
                break next.trigger;
            }
            if FileStamp::of(&cfg.policies) != stamp {
                break Trigger::PolicyFile;
            }
            if source.next_burst((deadline - now).min(RECHECK)) {
                break Trigger::Uevent;
            }
        };
        tracing::info!(?trigger, "re-applying");
    }
}
