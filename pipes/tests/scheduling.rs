//! With `PipeScheduler::Reactor`, a reader's continuation runs on its reactor thread even
//! when the writer is a plain thread or another reactor.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringhop_pipes::{cross_thread_wakes, Pipe, PipeOptions, PipeScheduler};
use ringhop_runtime::{self as rt, Runtime};

const MESSAGES: u64 = 2_000;

fn reader_task(
    runtime: &Runtime,
    mut reader: ringhop_pipes::PipeReader,
) -> rt::JoinHandle<(u64, u64)> {
    runtime.handles()[0].spawn(move || async move {
        let me = rt::current();
        let (mut bytes, mut off_thread) = (0u64, 0u64);
        loop {
            let result = reader.read().await.unwrap();
            // Every continuation of this read loop must run on reactor 0.
            if !me.is_current() {
                off_thread += 1;
            }
            let len = result.len();
            let done = result.is_completed();
            reader.advance_to(len, len).unwrap();
            bytes += len as u64;
            if done {
                return (bytes, off_thread);
            }
        }
    })
}

#[test]
fn reader_continuations_stay_on_their_reactor_with_a_plain_thread_writer() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    let reactor = runtime.handles()[0].clone();
    let (reader, mut writer) = Pipe::new(
        PipeOptions::default()
            .pause_writer_threshold(4096)
            .resume_writer_threshold(1024)
            .reader_scheduler(PipeScheduler::Reactor(reactor.clone())),
    )
    .unwrap();
    let before = cross_thread_wakes();
    let task = reader_task(&runtime, reader);
    let writer_thread = std::thread::spawn(move || {
        let waker_thread = std::thread::current();
        let waker = std::task::Waker::from(Arc::new(Unpark(waker_thread)));
        let mut cx = std::task::Context::from_waker(&waker);
        for i in 0..MESSAGES {
            writer.write(&i.to_le_bytes());
            let mut flush = std::pin::pin!(writer.flush());
            while flush.as_mut().poll(&mut cx).is_pending() {
                std::thread::park();
            }
        }
        writer.complete(None);
    });
    writer_thread.join().unwrap();
    let (bytes, off_thread) = runtime.block_on(task);
    assert_eq!(bytes, MESSAGES * 8);
    assert_eq!(off_thread, 0, "a reader continuation ran off its reactor");
    assert!(
        cross_thread_wakes() > before,
        "the writer's wakes were not posted to the reactor"
    );
    assert_eq!(reactor.stats().off_reactor_polls, 0);
}

struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

use std::future::Future;

#[test]
fn reader_on_one_reactor_writer_on_another() {
    let runtime = Runtime::builder()
        .reactors(2)
        .pin_cores(false)
        .build()
        .unwrap();
    let reader_reactor = runtime.handles()[0].clone();
    let (reader, writer) = Pipe::new(
        PipeOptions::default().reader_scheduler(PipeScheduler::Reactor(reader_reactor.clone())),
    )
    .unwrap();
    let task = reader_task(&runtime, reader);
    let writer = Arc::new(std::sync::Mutex::new(Some(writer)));
    let written = Arc::new(AtomicU64::new(0));
    let (w, n) = (writer.clone(), written.clone());
    runtime.block_on(runtime.handles()[1].spawn(move || async move {
        let mut writer = w.lock().unwrap().take().unwrap();
        assert_eq!(rt::current().index(), 1);
        for i in 0..MESSAGES {
            writer.write_all(&i.to_le_bytes()).await.unwrap();
            n.fetch_add(8, Ordering::Relaxed);
        }
        writer.complete(None);
    }));
    let (bytes, off_thread) = runtime.block_on(task);
    assert_eq!(bytes, written.load(Ordering::Relaxed));
    assert_eq!(off_thread, 0);
    for handle in runtime.handles() {
        assert_eq!(handle.stats().off_reactor_polls, 0);
    }
}

#[test]
fn a_waiter_off_the_reactor_is_woken_after_the_reactor_shut_down() {
    // The pipe was made on a reactor, so its reader is woken through that reactor; once the
    // reactor is gone its queue refuses the post, and the wake was dropped with it: a plain
    // thread waiting to read waited forever.
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    let (mut reader, mut writer) =
        runtime.block_on_local(|| async { Pipe::new(PipeOptions::default()).unwrap() });
    drop(runtime);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let len = common::block_on(reader.read()).map(|read| read.len());
        done_tx.send(len.ok()).unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    writer.write(b"hi");
    let _ = common::block_on(writer.flush());
    let read = done_rx.recv_timeout(std::time::Duration::from_secs(5));
    assert_eq!(read, Ok(Some(2)), "the waiting reader was never woken");
    waiter.join().unwrap();
}
