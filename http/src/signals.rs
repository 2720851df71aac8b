//! SIGINT/SIGTERM → graceful shutdown, through a signalfd.
//!
//! The signals are blocked on the calling thread and on every reactor (so none of them is
//! killed by the default action), and a small watcher thread polls the signalfd; on a signal
//! it posts the shutdown trigger to every reactor.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use ringhop_runtime::Runtime;

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

fn block_signals() {
    let set = signal_set();
    // SAFETY: a valid set; changes only the calling thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Watches for SIGINT/SIGTERM while alive.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub(crate) fn install(runtime: &Runtime) -> io::Result<Watcher> {
        block_signals();
        for handle in runtime.handles() {
            let _ = handle.post(block_signals);
        }
        let set = signal_set();
        // SAFETY: a valid set; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handles = runtime.handles().to_vec();
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
                while !thread_stop.load(Ordering::Acquire) {
                    // SAFETY: one valid pollfd.
                    let ready = unsafe { libc::poll(&mut pollfd, 1, 100) };
                    if ready > 0 {
                        let mut info = [0u8; 128];
                        // SAFETY: reads one signalfd_siginfo (128 bytes) into our buffer.
                        let _ = unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) };
                        for handle in &handles {
                            let _ = handle.post(crate::shutdown::trigger);
                        }
                    }
                }
                // SAFETY: our own fd, closed once.
                unsafe { libc::close(fd) };
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
