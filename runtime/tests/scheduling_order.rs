//! The order in which a reactor polls ready tasks: FIFO, except that a task the polled task
//! wakes inside `hand_off` runs next, with self-wakes and long hand-off chains sent to the
//! back so that nothing starves.

mod common;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use ringhop_runtime as rt;

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A task that is pending until `flag` is set, then logs `name`.
fn waiter(
    flag: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
    log: Log,
    name: &'static str,
) -> impl std::future::Future<Output = ()> {
    poll_fn(move |cx| {
        if flag.get() {
            log.borrow_mut().push(name);
            Poll::Ready(())
        } else {
            *waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
}

#[test]
fn a_task_handed_off_by_the_running_task_is_polled_before_older_queued_tasks() {
    // FIFO alone would give a, c, b: b waits behind c although a just handed it work.
    assert_eq!(wake_order(true), ["a", "b", "c"]);
}

#[test]
fn a_plain_wake_is_fifo() {
    assert_eq!(wake_order(false), ["a", "c", "b"]);
}

/// `b` waits; `a` wakes it (handing off or not) while `c` is queued behind `a`.
fn wake_order(hand_off: bool) -> Vec<&'static str> {
    let runtime = common::runtime(1);
    runtime.block_on_local(move || async move {
        let log: Log = Rc::default();
        let flag = Rc::new(Cell::new(false));
        let slot = Rc::new(RefCell::new(None::<Waker>));
        let b = rt::spawn_local(waiter(flag.clone(), slot.clone(), log.clone(), "b"));
        rt::yield_now().await; // b registers its waker
        let a = rt::spawn_local({
            let log = log.clone();
            async move {
                log.borrow_mut().push("a");
                flag.set(true);
                let waker = slot.borrow_mut().take().unwrap();
                if hand_off {
                    rt::hand_off(|| waker.wake());
                } else {
                    waker.wake();
                }
            }
        });
        let c = rt::spawn_local({
            let log = log.clone();
            async move { log.borrow_mut().push("c") }
        });
        // Await c first: a finishing must not wake this task (which would then take the
        // hand-off slot from b, as the latest hand-off wins).
        c.await;
        a.await;
        b.await;
        let order = log.borrow().clone();
        order
    })
}

#[test]
fn a_yielding_task_goes_to_the_back() {
    let runtime = common::runtime(1);
    let log = runtime.block_on_local(|| async {
        let log: Log = Rc::default();
        let spawn = |first: &'static str, second: &'static str| {
            let log = log.clone();
            rt::spawn_local(async move {
                log.borrow_mut().push(first);
                rt::yield_now().await;
                log.borrow_mut().push(second);
            })
        };
        let one = spawn("1a", "1b");
        let two = spawn("2a", "2b");
        one.await;
        two.await;
        let order = log.borrow().clone();
        order
    });
    assert_eq!(log, ["1a", "2a", "1b", "2b"]);
}

#[test]
fn two_tasks_handing_off_forever_do_not_starve_a_third() {
    let runtime = common::runtime(1);
    let hops_before_third_ran = runtime.block_on_local(|| async {
        let stop = Rc::new(Cell::new(false));
        let hops = Rc::new(Cell::new(0u64));
        let wakers: Rc<[RefCell<Option<Waker>>; 2]> = Rc::default();
        // Each player hands off to the other during its poll.
        let player = |me: usize| {
            let (stop, hops, wakers) = (stop.clone(), hops.clone(), wakers.clone());
            rt::spawn_local(poll_fn(move |cx| {
                if stop.get() {
                    if let Some(other) = wakers[1 - me].borrow_mut().take() {
                        other.wake();
                    }
                    return Poll::Ready(());
                }
                hops.set(hops.get() + 1);
                *wakers[me].borrow_mut() = Some(cx.waker().clone());
                if let Some(other) = wakers[1 - me].borrow_mut().take() {
                    rt::hand_off(|| other.wake());
                }
                Poll::Pending
            }))
        };
        let (p, q) = (player(0), player(1));
        let third = rt::spawn_local({
            let (stop, hops) = (stop.clone(), hops.clone());
            async move {
                stop.set(true);
                hops.get()
            }
        });
        let seen = third.await;
        p.await;
        q.await;
        seen
    });
    assert!(
        hops_before_third_ran < 20,
        "the third task ran only after {hops_before_third_ran} hand-offs"
    );
}

/// A before-submit item that queues itself again `left` more times, then wakes `waker`.
struct Chain {
    left: Cell<u32>,
    done: Rc<Cell<bool>>,
    waker: RefCell<Option<Waker>>,
}

impl rt::BeforeSubmit for Chain {
    fn before_submit(self: Rc<Self>) {
        match self.left.get() {
            0 => {
                self.done.set(true);
                if let Some(waker) = self.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
            left => {
                self.left.set(left - 1);
                assert!(rt::before_submit(self.clone()));
            }
        }
    }
}

#[test]
fn before_submit_work_left_after_the_turns_rounds_runs_without_waiting_for_an_event() {
    // A turn runs a few rounds of items queued by items, then submits. A chain longer than
    // that used to stay queued while the reactor parked, until an unrelated event (here
    // the 5 s timeout) woke it.
    // (On the driver RINGHOP_DRIVER selects: CI runs this file on both.)
    let runtime = common::runtime(1);
    let waited = runtime.block_on_local(|| async {
        let done = Rc::new(Cell::new(false));
        let chain = Rc::new(Chain {
            left: Cell::new(20),
            done: done.clone(),
            waker: RefCell::new(None),
        });
        let started = std::time::Instant::now();
        let finished = rt::time::timeout(
            std::time::Duration::from_secs(5),
            poll_fn(|cx| {
                if done.get() {
                    return Poll::Ready(());
                }
                if chain.waker.borrow().is_none() {
                    *chain.waker.borrow_mut() = Some(cx.waker().clone());
                    assert!(rt::before_submit(chain.clone()));
                }
                Poll::Pending
            }),
        )
        .await;
        assert!(finished.is_ok(), "the chain never finished");
        started.elapsed()
    });
    assert!(
        waited < std::time::Duration::from_millis(500),
        "the chain's last items waited {waited:?} for an unrelated event"
    );
}
