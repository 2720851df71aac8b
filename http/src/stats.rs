//! Counters of the HTTP servers, kept per reactor (plain cells: only the reactor's own
//! thread touches them) and gathered on demand by [`stats`], which asks every reactor for
//! its share. Tests use them to prove that nothing leaks: open connections, in-flight ops,
//! live pipes and segments return to where they started once clients are gone.

use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

use ringhop_runtime::Runtime;

/// Why the server ended a connection (or stopped accepting), for the counters.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// A head not complete within the header timeout (408).
    HeaderTimeout,
    /// A request body below the minimum rate (408, or cut).
    BodyRate,
    /// A keep-alive connection idle too long.
    Idle,
    /// A request refused at its head (400, 413, 414, 431, 501, 505).
    Rejected,
    /// The accept loop reached its share of the connection cap and paused.
    AtCap,
}

#[derive(Default)]
struct Counters {
    open: Cell<u64>,
    header_timeouts: Cell<u64>,
    body_rate: Cell<u64>,
    idle: Cell<u64>,
    rejected: Cell<u64>,
    at_cap: Cell<u64>,
    requests: Cell<u64>,
}

thread_local! {
    static COUNTERS: Counters = Counters::default();
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

pub(crate) fn count(event: Event) {
    COUNTERS.with(|c| match event {
        Event::HeaderTimeout => bump(&c.header_timeouts),
        Event::BodyRate => bump(&c.body_rate),
        Event::Idle => bump(&c.idle),
        Event::Rejected => bump(&c.rejected),
        Event::AtCap => bump(&c.at_cap),
    });
}

/// A request reached its handler (native) or service (hyper).
pub(crate) fn request_served() {
    COUNTERS.with(|c| bump(&c.requests));
}

pub(crate) fn connection_opened() {
    COUNTERS.with(|c| bump(&c.open));
}

pub(crate) fn connection_closed() {
    COUNTERS.with(|c| c.open.set(c.open.get() - 1));
}

/// One reactor's counters (`closed_*` and `rejected` count since the reactor started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReactorCounters {
    /// Connections being served now.
    pub open_connections: u64,
    /// I/O operations the kernel still owes this reactor a completion for (listeners'
    /// accepts included).
    pub ops_in_flight: u64,
    /// Closed after a 408 for a head not complete in time.
    pub closed_header_timeout: u64,
    /// Closed after a request body came below the minimum rate.
    pub closed_body_rate: u64,
    /// Reset for taking the output below the minimum rate.
    pub closed_send_rate: u64,
    /// Closed after the keep-alive idle timeout.
    pub closed_idle: u64,
    /// Requests refused at their head (400, 413, 414, 431, 501, 505).
    pub rejected: u64,
    /// Times the accept loop paused at its share of the connection cap.
    pub paused_at_cap: u64,
    /// Requests that reached a handler or service.
    pub requests: u64,
    /// Task polls on the reactor (all tasks: connections, pumps, accept loops).
    pub task_polls: u64,
    /// Pipe locks taken on the reactor.
    pub pipe_locks: u64,
    /// I/O submitted: SQEs (io_uring) or op syscalls (epoll).
    pub submissions: u64,
    /// Trips into the kernel to submit or wait (`io_uring_enter` / `epoll_wait`).
    pub kernel_enters: u64,
}

impl ReactorCounters {
    fn here() -> ReactorCounters {
        let runtime = ringhop_runtime::try_current()
            .map(|r| r.stats())
            .unwrap_or_default();
        COUNTERS.with(|c| ReactorCounters {
            requests: c.requests.get(),
            task_polls: runtime.polls,
            pipe_locks: ringhop_pipes::lock_acquisitions(),
            submissions: runtime.submissions,
            kernel_enters: runtime.enters,
            open_connections: c.open.get(),
            ops_in_flight: ringhop_runtime::ops_in_flight() as u64,
            closed_header_timeout: c.header_timeouts.get(),
            closed_body_rate: c.body_rate.get(),
            closed_send_rate: ringhop_pipes::send_rate_cuts(),
            closed_idle: c.idle.get(),
            rejected: c.rejected.get(),
            paused_at_cap: c.at_cap.get(),
        })
    }

    fn add(&mut self, other: &ReactorCounters) {
        self.open_connections += other.open_connections;
        self.ops_in_flight += other.ops_in_flight;
        self.closed_header_timeout += other.closed_header_timeout;
        self.closed_body_rate += other.closed_body_rate;
        self.closed_send_rate += other.closed_send_rate;
        self.closed_idle += other.closed_idle;
        self.rejected += other.rejected;
        self.paused_at_cap += other.paused_at_cap;
        self.requests += other.requests;
        self.task_polls += other.task_polls;
        self.pipe_locks += other.pipe_locks;
        self.submissions += other.submissions;
        self.kernel_enters += other.kernel_enters;
    }

    /// Task polls, pipe locks, submissions and kernel enters per request served (zeros
    /// before the first request): the shape of the request path, printed by the benches.
    pub fn per_request(&self) -> [f64; 4] {
        let requests = self.requests.max(1) as f64;
        [
            self.task_polls as f64 / requests,
            self.pipe_locks as f64 / requests,
            self.submissions as f64 / requests,
            self.kernel_enters as f64 / requests,
        ]
    }
}

/// A snapshot of the servers' counters on every reactor of a runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Each reactor's counters, in reactor order.
    pub reactors: Vec<ReactorCounters>,
    /// Their sum.
    pub total: ReactorCounters,
    /// Pipes alive in the process.
    pub live_pipes: usize,
    /// Pipe segments allocated in the process (pooled ones included).
    pub live_segments: usize,
}

/// Gathers the counters of every reactor of `runtime` (each reports from its own thread;
/// one that does not answer within a second is left out). Call it from outside the
/// reactors.
///
/// ```no_run
/// # let runtime = ringhop_runtime::Runtime::builder().build().unwrap();
/// let stats = ringhop_http::stats(&runtime);
/// println!("{} connections open", stats.total.open_connections);
/// ```
pub fn stats(runtime: &Runtime) -> Stats {
    let (reply, replies) = mpsc::channel();
    let mut asked = 0;
    for (index, handle) in runtime.handles().iter().enumerate() {
        let reply = reply.clone();
        if handle
            .post(move || {
                let _ = reply.send((index, ReactorCounters::here()));
            })
            .is_ok()
        {
            asked += 1;
        }
    }
    let mut reactors = vec![ReactorCounters::default(); runtime.handles().len()];
    for _ in 0..asked {
        match replies.recv_timeout(Duration::from_secs(1)) {
            Ok((index, counters)) => reactors[index] = counters,
            Err(_) => break,
        }
    }
    let mut total = ReactorCounters::default();
    reactors.iter().for_each(|r| total.add(r));
    Stats {
        reactors,
        total,
        live_pipes: ringhop_pipes::live_pipes(),
        live_segments: ringhop_pipes::live_segments(),
    }
}
