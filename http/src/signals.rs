//! SIGINT/SIGTERM → graceful shutdown, through a signalfd.
//!
//! The signals are blocked on the calling thread and on every reactor before the watcher
//! starts (so no thread is killed by the default action), and a small watcher thread polls
//! the signalfd: the first signal posts the shutdown trigger to every reactor, a second one
//! exits the process at once. When the watcher goes, every thread gets its mask back.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use ringhop_runtime::{ReactorHandle, Runtime};

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

thread_local! {
    /// The mask this thread had before `block_signals`, restored by `restore_signals`.
    static SAVED_MASK: Cell<Option<libc::sigset_t>> = const { Cell::new(None) };
}

/// Blocks SIGINT/SIGTERM on the calling thread, remembering its previous mask.
fn block_signals() {
    let set = signal_set();
    // SAFETY: all-zero is a valid (empty) sigset_t for the kernel to overwrite.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set and a valid out pointer; changes only the calling thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    SAVED_MASK.with(|saved| {
        if saved.get().is_none() {
            saved.set(Some(old));
        }
    });
}

/// Gives the calling thread back the mask `block_signals` found.
fn restore_signals() {
    if let Some(old) = SAVED_MASK.with(Cell::take) {
        // SAFETY: a mask this thread had before; changes only the calling thread's mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
}

/// Runs `f` on every reactor and waits until each ran it (bounded: a reactor that is gone
/// does not hold us up).
fn on_every_reactor(reactors: &[ReactorHandle], f: fn()) {
    let (done, ran) = mpsc::channel();
    let mut posted = 0;
    for handle in reactors {
        let done = done.clone();
        if handle
            .post(move || {
                f();
                let _ = done.send(());
            })
            .is_ok()
        {
            posted += 1;
        }
    }
    for _ in 0..posted {
        if ran.recv_timeout(Duration::from_secs(5)).is_err() {
            break;
        }
    }
}

/// Watches for SIGINT/SIGTERM while alive.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    reactors: Vec<ReactorHandle>,
}

impl Watcher {
    /// Blocks the signals on this thread and on every reactor — and waits until they all
    /// did, since a signal delivered to a thread that does not block it kills the process
    /// — then starts watching. The first signal starts a graceful shutdown; a second one
    /// exits at once (status 128 + signal), as an impatient operator expects.
    pub(crate) fn install(runtime: &Runtime) -> io::Result<Watcher> {
        block_signals();
        let reactors = runtime.handles().to_vec();
        on_every_reactor(&reactors, block_signals);
        let set = signal_set();
        // SAFETY: a valid set; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            restore_signals();
            on_every_reactor(&reactors, restore_signals);
            return Err(err);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread_handles = reactors.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ringhop-signals".into())
            .spawn(move || {
                // Signals reach this thread's signalfd only if it blocks them too.
                block_signals();
                let mut pollfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut received = 0;
                while !thread_stop.load(Ordering::Acquire) {
                    // SAFETY: one valid pollfd.
                    let ready = unsafe { libc::poll(&mut pollfd, 1, 100) };
                    if ready <= 0 {
                        continue;
                    }
                    let mut info = [0u8; 128];
                    // SAFETY: reads one signalfd_siginfo (128 bytes) into our buffer.
                    let n = unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) };
                    if n < 4 {
                        continue;
                    }
                    received += 1;
                    if received > 1 {
                        // `ssi_signo` is the struct's first field.
                        let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                        eprintln!("ringhop-http: second signal during shutdown, exiting now");
                        std::process::exit(128 + signo as i32);
                    }
                    for handle in &thread_handles {
                        let _ = handle.post(crate::shutdown::trigger);
                    }
                }
                // SAFETY: our own fd, closed once.
                unsafe { libc::close(fd) };
            });
        let thread = match thread {
            Ok(thread) => thread,
            Err(err) => {
                // SAFETY: our own fd, never handed to the thread that failed to start.
                unsafe { libc::close(fd) };
                restore_signals();
                on_every_reactor(&reactors, restore_signals);
                return Err(err);
            }
        };
        Ok(Watcher {
            stop,
            thread: Some(thread),
            reactors,
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Masks go back to what they were: the runtime may serve again, or do other work.
        restore_signals();
        on_every_reactor(&self.reactors, restore_signals);
    }
}
