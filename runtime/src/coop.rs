//! Cooperative scheduling budget: a bound on how much work one task poll may do while its
//! input keeps being ready, so a task fed faster than it can work (a peer pipelining
//! thousands of requests) still yields and everyone else on the reactor gets a turn.
//!
//! Every task poll starts with [`TASK_BUDGET`] units. Operations that can be ready poll after
//! poll (a pipe read, a request head) take one unit with [`poll_proceed`]; once the budget is
//! spent they return `Pending` after waking their task, which goes to the back of the run
//! queue and continues with a fresh budget. Outside a task poll (a plain thread, a test
//! polling by hand) the budget is unlimited. tokio's `coop` module is the model.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Context, Poll};

/// Units each task poll may spend.
pub const TASK_BUDGET: u16 = 128;

thread_local! {
    /// `None` outside a task poll: unlimited.
    static BUDGET: Cell<Option<u16>> = const { Cell::new(None) };
}

/// Runs one task poll with a fresh budget, restoring the previous one afterwards (also when
/// the poll unwinds).
pub(crate) fn with_budget<R>(poll: impl FnOnce() -> R) -> R {
    struct Restore(Option<u16>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|budget| budget.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|budget| budget.replace(Some(TASK_BUDGET))));
    poll()
}

/// Takes one unit of the current task's budget. `Pending` (with the task woken, so it runs
/// again after the others) when it is spent.
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    BUDGET.with(|budget| match budget.get() {
        None => Poll::Ready(()),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(left) => {
            budget.set(Some(left - 1));
            Poll::Ready(())
        }
    })
}

/// Whether the current task poll has budget left (always `true` outside a task poll).
pub fn has_budget() -> bool {
    BUDGET.with(|budget| budget.get() != Some(0))
}

/// Takes one unit of budget, yielding first when it is spent.
///
/// ```
/// # let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// # rt.block_on_local(|| async {
/// // A loop over input that is always ready still lets other tasks run.
/// for _ in 0..1000 {
///     ringhop_runtime::coop::proceed().await;
/// }
/// # });
/// ```
pub async fn proceed() {
    poll_fn(poll_proceed).await
}
