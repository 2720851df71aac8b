//! Two futures polled by one task until both are done: a middleware's two directions.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `a` and `b` to completion in the calling task; resolves to both outputs.
pub(crate) fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a,
        b,
        out_a: None,
        out_b: None,
    }
}

/// The future of [`join`]: a struct rather than an `async fn`, whose state would hold both
/// futures twice (they live as long as the connection).
pub(crate) struct Join<A: Future, B: Future> {
    a: A,
    b: B,
    out_a: Option<A::Output>,
    out_b: Option<B::Output>,
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `a` and `b`: they are never moved out of the pinned
        // `Join`, which has no `Drop` or `Unpin` impl of its own; the outputs are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if this.out_a.is_none() {
            // SAFETY: as above, `a` stays where the pinned `Join` holds it.
            if let Poll::Ready(out) = unsafe { Pin::new_unchecked(&mut this.a) }.poll(cx) {
                this.out_a = Some(out);
            }
        }
        if this.out_b.is_none() {
            // SAFETY: as above, `b` stays where the pinned `Join` holds it.
            if let Poll::Ready(out) = unsafe { Pin::new_unchecked(&mut this.b) }.poll(cx) {
                this.out_b = Some(out);
            }
        }
        match (this.out_a.take(), this.out_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (this.out_a, this.out_b) = (a, b);
                Poll::Pending
            }
        }
    }
}
