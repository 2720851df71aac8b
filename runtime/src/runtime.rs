//! `Runtime`: builds reactor threads, pins them, hands out their handles, joins them on drop.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use crate::driver::{self, Driver};
use crate::handle::ReactorHandle;
use crate::reactor::{Reactor, ReactorConfig};
use crate::scheduler::blocking_pool::{self as blocking, BlockingPool};
use crate::scheduler::{self, Shared};
use crate::task::JoinHandle;

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = ringhop_runtime::Runtime::builder()
///     .reactors(2)
///     .pin_cores(false)
///     .ring_entries(256)
///     .build()?;
/// assert_eq!(rt.handles().len(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    reactors: Option<usize>,
    pin_cores: bool,
    config: ReactorConfig,
    thread_name: String,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
    /// Worker threads of the side tokio runtime; 0: none.
    #[cfg(feature = "tokio-compat")]
    tokio_threads: usize,
}

impl Builder {
    fn new() -> Self {
        Builder {
            reactors: None,
            pin_cores: true,
            config: ReactorConfig {
                driver: Driver::Auto,
                ring_entries: 1024,
                defer_taskrun: true,
                budget: 128,
                spin_before_park: Duration::ZERO,
            },
            thread_name: "ringhop-reactor".to_owned(),
            max_blocking_threads: blocking::DEFAULT_MAX_THREADS,
            blocking_keep_alive: blocking::DEFAULT_KEEP_ALIVE,
            #[cfg(feature = "tokio-compat")]
            tokio_threads: 0,
        }
    }

    /// Owns a side tokio runtime with `worker_threads` threads (at least 1) whose context
    /// every reactor thread enters: `tokio::spawn`, `tokio::time` and `tokio::net` (and the
    /// crates built on them) then work inside ringhop tasks. Their timers, sockets and
    /// spawned tasks run on the side runtime; ringhop tasks stay on their reactors and are
    /// woken there. Default: no side runtime (tokio calls panic with "there is no reactor
    /// running").
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringhop_runtime::Runtime::builder().reactors(1).tokio_compat(1).build()?;
    /// let answer = rt.block_on(async {
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    ///     tokio::spawn(async { 40 + 2 }).await.unwrap()
    /// });
    /// assert_eq!(answer, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tokio-compat")]
    pub fn tokio_compat(&mut self, worker_threads: usize) -> &mut Self {
        self.tokio_threads = worker_threads.max(1);
        self
    }

    /// The kernel interface for I/O. Default: [`Driver::Auto`] (io_uring when this process
    /// may use it, else epoll). `RINGHOP_DRIVER=io_uring|epoll|auto` overrides it.
    pub fn driver(&mut self, driver: Driver) -> &mut Self {
        self.config.driver = driver;
        self
    }

    /// Number of reactor threads. Default: the number of available cores.
    pub fn reactors(&mut self, n: usize) -> &mut Self {
        self.reactors = Some(n.max(1));
        self
    }

    /// Pins reactor `i` to the `i`-th core (modulo the count) of the cores the building
    /// thread may run on, so `taskset -c 2,3 server` pins reactors to cores 2 and 3.
    /// Default: `true`.
    pub fn pin_cores(&mut self, pin: bool) -> &mut Self {
        self.pin_cores = pin;
        self
    }

    /// Submission-queue size of each reactor's ring (the completion queue is 4× larger).
    /// Default: 1024.
    pub fn ring_entries(&mut self, entries: u32) -> &mut Self {
        self.config.ring_entries = entries;
        self
    }

    /// Whether to ask for `IORING_SETUP_DEFER_TASKRUN` (completions are posted only when the
    /// reactor enters the kernel). Default: `true`; the ring falls back without it when the
    /// kernel refuses. `COOP_TASKRUN` and `SINGLE_ISSUER` are always tried.
    pub fn defer_taskrun(&mut self, defer: bool) -> &mut Self {
        self.config.defer_taskrun = defer;
        self
    }

    /// Task polls per loop iteration before the reactor looks at completions and its remote
    /// queue again. Default: 128.
    pub fn event_budget(&mut self, budget: usize) -> &mut Self {
        self.config.budget = budget.max(1);
        self
    }

    /// How long an idle reactor keeps polling its remote queue and completion ring (without
    /// a syscall) before it parks in the kernel. Default: zero, never spin.
    ///
    /// A parked reactor pays a kernel wake-up (eventfd write, task work, scheduler) when
    /// another thread wakes one of its tasks: about 6 µs on a 2-core VM against about 1 µs
    /// while spinning (`cargo bench --bench runtime`). Spinning trades that for CPU burnt
    /// while idle, which every request pays for when load is light; worth it when remote
    /// wakes are frequent and latency matters more than CPU.
    pub fn spin_before_park(&mut self, spin: Duration) -> &mut Self {
        self.config.spin_before_park = spin;
        self
    }

    /// The most threads [`spawn_blocking`](crate::spawn_blocking) runs at once; further jobs
    /// queue. Default: 512.
    pub fn max_blocking_threads(&mut self, threads: usize) -> &mut Self {
        self.max_blocking_threads = threads.max(1);
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits. Default: 10 s.
    pub fn blocking_keep_alive(&mut self, keep_alive: Duration) -> &mut Self {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// Name prefix of the reactor threads (suffixed with `-{index}`).
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.thread_name = name.into();
        self
    }

    /// Starts the reactor threads. Fails (naming cause and fix) when the driver cannot be set
    /// up: with [`Driver::IoUring`] where io_uring is refused, for one.
    pub fn build(&self) -> io::Result<Runtime> {
        let mut config = self.config;
        config.driver = driver::resolve(config.driver, config.ring_entries, config.defer_taskrun)?;
        let count = self
            .reactors
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        let cores = if self.pin_cores {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let blocking = Arc::new(BlockingPool::new(
            self.max_blocking_threads,
            self.blocking_keep_alive,
            self.thread_name.clone(),
        ));
        #[cfg(feature = "tokio-compat")]
        let tokio = match self.tokio_threads {
            0 => None,
            threads => Some(crate::tokio_compat::side_runtime(
                threads,
                &self.thread_name,
            )?),
        };
        let mut runtime = Runtime {
            handles: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
            driver: config.driver,
            blocking: blocking.clone(),
            #[cfg(feature = "tokio-compat")]
            tokio,
        };
        for index in 0..count {
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let blocking = blocking.clone();
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            #[cfg(feature = "tokio-compat")]
            let tokio = runtime.tokio.as_ref().map(|rt| rt.handle().clone());
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || {
                    // The side runtime's context, for the reactor thread's whole life.
                    #[cfg(feature = "tokio-compat")]
                    let _tokio = tokio.as_ref().map(|handle| handle.enter());
                    reactor_thread(index, core, config, blocking, ready_tx)
                })?;
            runtime.threads.push(thread);
            match ready_rx.recv() {
                Ok(Ok(shared)) => runtime.handles.push(ReactorHandle { shared }),
                Ok(Err(err)) => return Err(err),
                Err(_) => {
                    return Err(io::Error::other(format!(
                        "reactor thread {index} exited during start-up"
                    )))
                }
            }
        }
        Ok(runtime)
    }
}

fn reactor_thread(
    index: usize,
    core: Option<core_affinity::CoreId>,
    config: ReactorConfig,
    blocking: Arc<BlockingPool>,
    ready: mpsc::SyncSender<io::Result<Arc<Shared>>>,
) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
    let reactor = Shared::new(index, config.driver, blocking)
        .map(Arc::new)
        .and_then(|shared| Reactor::new(shared, config));
    let reactor = match reactor {
        Ok(reactor) => reactor,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let _ = ready.send(Ok(reactor.shared().clone()));
    reactor.enter();
    reactor.run();
    reactor.shutdown();
    reactor.exit();
}

/// A set of reactor threads, one per core by default.
///
/// Dropping the runtime stops every reactor (tasks still running are cancelled) and joins its
/// thread.
pub struct Runtime {
    handles: Vec<ReactorHandle>,
    threads: Vec<thread::JoinHandle<()>>,
    driver: Driver,
    blocking: Arc<BlockingPool>,
    #[cfg(feature = "tokio-compat")]
    tokio: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    /// The side tokio runtime (see [`Builder::tokio_compat`]), if there is one.
    #[cfg(feature = "tokio-compat")]
    pub fn tokio_handle(&self) -> Option<&tokio::runtime::Handle> {
        self.tokio.as_ref().map(|rt| rt.handle())
    }

    /// A builder with the defaults: one pinned reactor per core, 1024 ring entries.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The driver the reactors run: [`Driver::IoUring`] or [`Driver::Epoll`] (never `Auto`).
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Threads alive in the blocking pool (see [`spawn_blocking`](crate::spawn_blocking)).
    pub fn blocking_threads(&self) -> usize {
        self.blocking.threads()
    }

    /// One handle per reactor, in index order.
    pub fn handles(&self) -> &[ReactorHandle] {
        &self.handles
    }

    /// Runs `future` on reactor 0 and blocks the calling thread until it returns.
    ///
    /// The future crosses to the reactor thread, hence `Send`; for a `!Send` future use
    /// [`Runtime::block_on_local`]. A panic in the future resumes on the caller.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        block_on_thread(self.handles[0].spawn(move || future))
    }

    /// Builds a future with `factory` on reactor 0 and blocks the calling thread until it
    /// returns. Only the factory crosses threads, so the future may hold `Rc`s, streams and
    /// other `!Send` state across awaits. A panic in the future resumes on the caller.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
    /// let n = rt.block_on_local(|| async {
    ///     let shared = Rc::new(20);
    ///     ringhop_runtime::yield_now().await;
    ///     *shared + 1
    /// });
    /// assert_eq!(n, 21);
    /// ```
    pub fn block_on_local<F, Fut>(&self, factory: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        block_on_thread(self.handles[0].spawn(factory))
    }

    /// Starts `factory()` on every reactor (each builds its own, possibly `!Send`, future
    /// there) and waits for all of them: the thread-per-core entry point. Outputs come back in
    /// reactor order.
    pub fn run<F, Fut>(&self, factory: F) -> Vec<Fut::Output>
    where
        F: Fn() -> Fut + Send + Clone + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let tasks: Vec<JoinHandle<Fut::Output>> = self
            .handles
            .iter()
            .map(|handle| handle.spawn(factory.clone()))
            .collect();
        tasks.into_iter().map(block_on_thread).collect()
    }

    /// Stops every reactor and joins its thread (what `drop` does).
    pub fn shutdown(self) {}
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for handle in &self.handles {
            let _ = handle.post(|| {
                scheduler::with_current(scheduler::Local::stop);
            });
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.blocking.shutdown();
        // After the reactors: their tasks may hold tokio timers and sockets until they end.
        #[cfg(feature = "tokio-compat")]
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Runs `factory()` on every reactor of a default runtime (one pinned reactor per core) and
/// waits for all: the shortest way to a thread-per-core server.
///
/// ```no_run
/// ringhop_runtime::run(|| async {
///     let listener = ringhop_runtime::net::TcpListener::bind("127.0.0.1:7000".parse().unwrap())
///         .unwrap();
///     loop {
///         let stream = listener.accept().await.unwrap();
///         ringhop_runtime::spawn_local(async move { let _ = stream; });
///     }
/// })
/// .unwrap();
/// ```
pub fn run<F, Fut>(factory: F) -> io::Result<Vec<Fut::Output>>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    Ok(Runtime::builder().build()?.run(factory))
}

/// Blocks a non-reactor thread on `future`, parking between polls.
fn block_on_thread<F: Future>(future: F) -> F::Output {
    assert!(
        scheduler::with_current(|_| ()).is_none(),
        "block_on would deadlock when called on a reactor thread; await the future instead"
    );
    let thread = thread::current();
    let waker = waker_fn::waker_fn(move || thread.unpark());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}
