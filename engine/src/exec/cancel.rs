//! Cancellation that reaches running kernels. A [`CancelToken`] is a shared flag (plus an optional
//! deadline and an optional parent token) that an executor, a worker or a caller on another thread
//! sets; [`scope`] makes a token the *current* one of this thread while a kernel runs, and kernels call
//! [`checkpoint`] between units of work (rows or tiles of a blockwise program, merges of a reduction,
//! panels of a block product, slabs of a `.npy` read) to stop with [`Error::Cancelled`].
//!
//! The current token travels in a thread-local rather than as an argument so that `Op::run`, and every
//! kernel under it, keeps its signature: code that never runs under a scope sees no token and never
//! stops. A checkpoint costs a thread-local read and one or two relaxed loads; a deadline is compared
//! with the clock only every [`DEADLINE_EVERY`]-th checkpoint, because reading the clock costs more than
//! the rest of a checkpoint together.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A checkpoint compares the clock with its token's deadline once per this many checkpoints.
pub const DEADLINE_EVERY: u32 = 16;

/// Why a token is cancelled, kept so that the error says what happened.
const REASON_NONE: u8 = 0;
const REASON_CANCELLED: u8 = 1;
const REASON_DEADLINE: u8 = 2;

#[derive(Debug)]
struct Inner {
    flag: AtomicBool,
    reason: AtomicU8,
    deadline: Option<Instant>,
    /// The time limit the deadline came from, for the message ("time limit of 2s exceeded").
    limit: Option<Duration>,
    /// A token whose cancellation cancels this one too (a run's token under a caller's).
    parent: Option<CancelToken>,
    /// Whether this token or a parent has a deadline: only then do checkpoints read the clock.
    timed: bool,
}

/// A cancellation flag shared by clones: cancelling one cancels all. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl CancelToken {
    /// A token that is cancelled only by [`CancelToken::cancel`].
    pub fn new() -> Self {
        CancelToken::build(None, None, None)
    }

    /// A token that also counts as cancelled once `deadline` has passed.
    pub fn with_deadline(deadline: Instant) -> Self {
        CancelToken::build(Some(deadline), None, None)
    }

    /// A token cancelled `limit` from now; its error says "time limit of {limit} exceeded".
    pub fn with_time_limit(limit: Duration) -> Self {
        CancelToken::build(Instant::now().checked_add(limit), Some(limit), None)
    }

    /// A new token that is cancelled when `self` is, and can also be cancelled on its own (with an
    /// optional time limit from now) without cancelling `self`.
    pub fn child(&self, time_limit: Option<Duration>) -> Self {
        CancelToken::build(
            time_limit.and_then(|l| Instant::now().checked_add(l)),
            time_limit,
            Some(self.clone()),
        )
    }

    fn build(deadline: Option<Instant>, limit: Option<Duration>, parent: Option<Self>) -> Self {
        let timed = deadline.is_some() || parent.as_ref().is_some_and(|p| p.inner.timed);
        CancelToken {
            inner: Arc::new(Inner {
                timed,
                flag: AtomicBool::new(false),
                reason: AtomicU8::new(REASON_NONE),
                deadline,
                limit,
                parent,
            }),
        }
    }

    /// Cancels the token and every clone and child of it. Kernels running under it stop at their
    /// next checkpoint.
    pub fn cancel(&self) {
        self.mark(REASON_CANCELLED);
    }

    fn mark(&self, reason: u8) {
        let _ = self.inner.reason.compare_exchange(
            REASON_NONE,
            reason,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.inner.flag.store(true, Ordering::Release);
    }

    /// Whether the token, or a parent, is cancelled or past its deadline (this reads the clock only
    /// when there is a deadline).
    pub fn is_cancelled(&self) -> bool {
        self.flagged() || (self.inner.timed && self.deadline_passed(Instant::now()))
    }

    /// The flags alone, without the clock: the cheap part of a checkpoint.
    #[inline]
    fn flagged(&self) -> bool {
        let mut t = self;
        loop {
            if t.inner.flag.load(Ordering::Relaxed) {
                return true;
            }
            match &t.inner.parent {
                Some(p) => t = p,
                None => return false,
            }
        }
    }

    /// Marks the first token in the chain whose deadline is past, and says whether there was one.
    fn deadline_passed(&self, now: Instant) -> bool {
        let mut t = self;
        loop {
            if t.inner.deadline.is_some_and(|d| now >= d) {
                t.mark(REASON_DEADLINE);
                return true;
            }
            match &t.inner.parent {
                Some(p) => t = p,
                None => return false,
            }
        }
    }

    /// The token's deadline, the earliest in its chain of parents.
    pub fn deadline(&self) -> Option<Instant> {
        let own = self.inner.deadline;
        let up = self.inner.parent.as_ref().and_then(|p| p.deadline());
        match (own, up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `Ok` while the token is not cancelled, else [`Error::Cancelled`] saying why.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(self.error())
        } else {
            Ok(())
        }
    }

    /// The error for this token's cancellation: "cancelled", or "time limit of 2s exceeded" when a
    /// deadline fired first.
    pub fn error(&self) -> Error {
        let mut t = self;
        loop {
            match t.inner.reason.load(Ordering::Relaxed) {
                REASON_CANCELLED => {
                    return Error::Cancelled {
                        reason: "cancelled".into(),
                    };
                }
                REASON_DEADLINE => {
                    return Error::Cancelled {
                        reason: match t.inner.limit {
                            Some(l) => format!("time limit of {l:?} exceeded"),
                            None => "deadline passed".into(),
                        },
                    };
                }
                _ => {}
            }
            match &t.inner.parent {
                Some(p) => t = p,
                None => {
                    return Error::Cancelled {
                        reason: "cancelled".into(),
                    };
                }
            }
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

/// Restores the previous current token when a [`scope`] ends, also on unwinding.
struct Restore(Option<CancelToken>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Runs `f` with `token` as this thread's current token, so that the [`checkpoint`]s of the kernels
/// `f` calls stop once it is cancelled. Scopes nest; the previous token is restored afterwards.
pub fn scope<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| c.borrow_mut().replace(token.clone()));
    let _restore = Restore(prev);
    f()
}

/// `Err(Error::Cancelled)` if this thread runs under a [`scope`] whose token is cancelled (or past
/// its deadline), else `Ok`. Cheap enough to call per row of a kernel.
#[inline]
pub fn checkpoint() -> Result<()> {
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some(token) = current.as_ref() else {
            return Ok(());
        };
        if token.flagged() {
            return Err(token.error());
        }
        if token.inner.timed {
            let n = COUNTDOWN.with(|n| {
                let v = n.get().wrapping_add(1);
                n.set(v);
                v
            });
            if n.is_multiple_of(DEADLINE_EVERY) && token.deadline_passed(Instant::now()) {
                return Err(token.error());
            }
        }
        Ok(())
    })
}

/// The current token of this thread, if it runs under a [`scope`].
pub fn current() -> Option<CancelToken> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_sees_the_scoped_token_only() {
        let t = CancelToken::new();
        assert!(checkpoint().is_ok());
        scope(&t, || {
            assert!(checkpoint().is_ok());
            t.cancel();
            let e = checkpoint().unwrap_err();
            assert!(matches!(e, Error::Cancelled { .. }), "{e}");
            assert_eq!(e.to_string(), "cancelled");
        });
        assert!(checkpoint().is_ok(), "the scope ended");
    }

    #[test]
    fn a_child_follows_its_parent_but_not_the_reverse() {
        let parent = CancelToken::new();
        let child = parent.child(None);
        child.cancel();
        assert!(!parent.is_cancelled());
        let child = parent.child(None);
        parent.cancel();
        assert!(child.is_cancelled());
        assert_eq!(child.error().to_string(), "cancelled");
    }

    #[test]
    fn a_passed_time_limit_says_so() {
        let t = CancelToken::new().child(Some(Duration::from_millis(0)));
        scope(&t, || {
            let stopped = (0..DEADLINE_EVERY * 2).any(|_| checkpoint().is_err());
            assert!(stopped);
        });
        assert_eq!(t.error().to_string(), "time limit of 0ns exceeded");
        let t = CancelToken::with_time_limit(Duration::from_secs(2));
        assert!(!t.is_cancelled());
    }

    #[test]
    fn scopes_nest_and_restore() {
        let outer = CancelToken::new();
        let inner = CancelToken::new();
        inner.cancel();
        scope(&outer, || {
            assert!(scope(&inner, checkpoint).is_err());
            assert!(checkpoint().is_ok());
        });
    }
}
