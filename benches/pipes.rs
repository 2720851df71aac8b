//! Quick pipe throughput: same reactor and cross-thread, 64 B and 64 KiB writes, next to
//! this machine's memcpy rate (the ceiling: a pipe copies every byte once).
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
        println!(
            "pipe {write:>6} B writes: same reactor {:.2} GB/s ({:.2}x memcpy), cross-thread {:.2} GB/s ({:.2}x memcpy)",
            same,
            same / memcpy,
            cross,
            cross / memcpy
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
        // Touch the bytes, as a consumer would.
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
