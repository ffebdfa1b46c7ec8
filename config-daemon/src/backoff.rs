//! The daemon's one retry delay: exponential backoff from a first delay,
//! doubling up to a maximum, started over after a success. Used by the
//! Kubernetes mode (getting or creating the node state, sync retries) and
//! by the standalone `--watch` loop.

use std::time::Duration;

/// Exponential backoff: [`next_delay`](Self::next_delay) hands out `first`, `2 × first`,
/// `4 × first`, … up to `max`; [`reset`](Self::reset) starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles up to `max` (a `first` above `max` is
    /// used once as it is).
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    /// The delay to wait now; the one after it doubles (up to the maximum).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        now
    }

    /// The delay [`next_delay`](Self::next_delay) would hand out, without moving on.
    pub fn peek(&self) -> Duration {
        self.current
    }

    /// Starts over at the first delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_up_to_the_maximum_and_starts_over() {
        let mut b = Backoff::new(S(1), S(60));
        let seq: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.peek(), S(60));
        b.reset();
        assert_eq!(b.peek(), S(1));
        assert_eq!((b.next_delay(), b.next_delay()), (S(1), S(2)));
    }

    #[test]
    fn peek_does_not_move_on() {
        let b = Backoff::new(Duration::from_millis(30), Duration::from_millis(100));
        let mut c = b;
        assert_eq!(c.peek(), c.peek());
        assert_eq!(c.next_delay(), Duration::from_millis(30));
        assert_eq!(c.next_delay(), Duration::from_millis(60));
        assert_eq!(c.next_delay(), Duration::from_millis(100));
        assert_eq!(b.peek(), Duration::from_millis(30));
    }

    #[test]
    fn a_first_delay_above_the_maximum_is_used_once() {
        let mut b = Backoff::new(S(90), S(60));
        assert_eq!((b.next_delay(), b.next_delay()), (S(90), S(60)));
    }

    #[test]
    fn a_huge_maximum_does_not_overflow() {
        let mut b = Backoff::new(Duration::MAX / 2 + S(1), Duration::MAX);
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::MAX);
        assert_eq!(b.next_delay(), Duration::MAX);
    }
}
