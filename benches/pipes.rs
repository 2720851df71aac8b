//! Pipe throughput: same reactor and cross-thread, 64 B and 64 KiB writes, next to
//! `tokio::io::duplex` (64 KiB buffer) in the same run and to this machine's memcpy rate
//! (the ceiling: a pipe copies every byte once).
//!
//! `cargo bench --bench pipes`

use std::time::{Duration, Instant};

use ringhop::pipes::{Pipe, PipeOptions, PipeReader, PipeWriter};
use ringhop::rt::{self, Runtime};

const TOTAL: usize = 1 << 30;

fn main() {
    let memcpy = memcpy_rate();
    println!("memcpy: {:.2} GB/s (ceiling)", memcpy);
    let runtime = Runtime::builder().reactors(2).build().expect("runtime");
    for write in [64usize, 64 * 1024] {
        let total = if write == 64 { TOTAL / 16 } else { TOTAL };
        let same = same_reactor(&runtime, write, total);
        let cross = cross_reactor(&runtime, write, total);
        let tokio_same = tokio_duplex(write, total, false);
        let tokio_cross = tokio_duplex(write, total, true);
        println!(
            "pipe {write:>6} B writes: same reactor {same:.2} GB/s ({:.2}x memcpy, {:.2}x tokio duplex {tokio_same:.2}), cross-thread {cross:.2} GB/s ({:.2}x memcpy, {:.2}x tokio duplex {tokio_cross:.2})",
            same / memcpy,
            same / tokio_same,
            cross / memcpy,
            cross / tokio_cross,
        );
    }
}

fn gbps(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

/// Copies 64 KiB blocks round-robin into 1 MiB of destination, as a pipe fills segments.
fn memcpy_rate() -> f64 {
    let src = vec![1u8; 64 * 1024];
    let mut dst = vec![0u8; 1 << 20];
    dst.fill(2); // fault the pages in before timing
    let blocks = dst.len() / src.len();
    let start = Instant::now();
    for i in 0..TOTAL / src.len() {
        let at = (i % blocks) * src.len();
        dst[at..at + src.len()].copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    gbps(TOTAL, start.elapsed())
}

async fn write_all(mut writer: PipeWriter, write: usize, total: usize) {
    let data = vec![7u8; write];
    let mut written = 0;
    while written < total {
        writer.write(&data);
        written += write;
        writer.flush().await.unwrap();
    }
    writer.complete(None);
}

async fn read_all(mut reader: PipeReader) -> usize {
    let mut total = 0;
    loop {
        let result = reader.read().await.unwrap();
        let len = result.len();
        // Touch the bytes in place, as a parser would: reading a pipe copies nothing
        // (tokio::io::duplex below must copy out into the reader's buffer).
        let mut sum = 0u8;
        for chunk in result.chunks() {
            sum = sum
                .wrapping_add(chunk[0])
                .wrapping_add(chunk[chunk.len() - 1]);
        }
        std::hint::black_box(sum);
        let done = result.is_completed();
        reader.advance_to(len, len).unwrap();
        total += len;
        if done {
            return total;
        }
    }
}

fn same_reactor(runtime: &Runtime, write: usize, total: usize) -> f64 {
    runtime.block_on_local(move || async move {
        let (reader, writer) = Pipe::new(PipeOptions::default()).unwrap();
        let start = Instant::now();
        let producer = rt::spawn_local(write_all(writer, write, total));
        let read = read_all(reader).await;
        producer.await;
        assert_eq!(read, total);
        gbps(total, start.elapsed())
    })
}

fn cross_reactor(runtime: &Runtime, write: usize, total: usize) -> f64 {
    let (reader, writer) = Pipe::new(PipeOptions::default()).unwrap();
    let start = Instant::now();
    let producer = runtime.handles()[1].spawn(move || write_all(writer, write, total));
    let read = runtime.block_on(runtime.handles()[0].spawn(move || read_all(reader)));
    runtime.block_on(producer);
    assert_eq!(read, total);
    gbps(total, start.elapsed())
}

/// `tokio::io::duplex` with a 64 KiB buffer: both ends on one current_thread runtime, or the
/// writer on a second thread's runtime.
fn tokio_duplex(write: usize, total: usize, cross_thread: bool) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = tokio::io::duplex(64 * 1024);
    let produce = async move {
        let data = vec![7u8; write];
        let mut written = 0;
        while written < total {
            writer.write_all(&data).await.unwrap();
            written += write;
        }
    };
    let consume = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                return read;
            }
            read += n;
        }
    };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    };
    let start = Instant::now();
    let read = if cross_thread {
        let producer = std::thread::spawn(move || runtime().block_on(produce));
        let read = runtime().block_on(consume);
        producer.join().unwrap();
        read
    } else {
        let rt = runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let producer = tokio::task::spawn_local(produce);
            let read = consume.await;
            producer.await.unwrap();
            read
        })
    };
    assert_eq!(read, total);
    gbps(total, start.elapsed())
}
