//! Pipe throughput: same reactor and cross-thread, 64 B and 64 KiB writes, next to
//! `tokio::io::duplex` (64 KiB buffer) in the same run and to this machine's memcpy rate
//! (the ceiling: a pipe copies every byte once).
//!
//! `cargo bench --bench pipes` (criterion; the ratios are printed at the end).

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ringhop::pipes::{Pipe, PipeOptions, PipeReader, PipeWriter};
use ringhop::rt::{self, Runtime};
use support::{Summary, Tally};

fn main() {
    let mut c = support::criterion();
    let mut summary = Summary::default();
    let memcpy = memcpy_rate(&mut c);
    let runtime = Runtime::builder().reactors(2).build().expect("runtime");
    if let Some(memcpy) = memcpy {
        summary.add(format!("memcpy: {memcpy:.2} GB/s (the ceiling)"));
    }
    for write in [64usize, 64 * 1024] {
        let mut tallies: [Tally; 4] = Default::default();
        let [same, cross, tokio_same, tokio_cross] = &mut tallies;
        let mut group = c.benchmark_group(format!("pipe/{write}B_writes"));
        group.throughput(Throughput::Bytes(write as u64));
        group.bench_function("ringhop_same_reactor", |b| {
            b.iter_custom(|iters| same.record(iters, same_reactor(&runtime, write, iters)))
        });
        group.bench_function("tokio_duplex_same_thread", |b| {
            b.iter_custom(|iters| tokio_same.record(iters, tokio_duplex(write, iters, false)))
        });
        group.bench_function("ringhop_cross_thread", |b| {
            b.iter_custom(|iters| cross.record(iters, cross_reactor(&runtime, write, iters)))
        });
        group.bench_function("tokio_duplex_cross_thread", |b| {
            b.iter_custom(|iters| tokio_cross.record(iters, tokio_duplex(write, iters, true)))
        });
        group.finish();
        let rate = |t: &Tally| t.per_iter().map(|d| write as f64 / d.as_secs_f64() / 1e9);
        for (what, ours, theirs) in [
            ("same reactor", rate(same), rate(tokio_same)),
            ("cross-thread", rate(cross), rate(tokio_cross)),
        ] {
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                let of_memcpy =
                    memcpy.map_or(String::new(), |m| format!(", {:.2}x memcpy", ours / m));
                summary.add(format!(
                    "pipe, {write} B writes, {what}: ringhop {ours:.2} GB/s, tokio duplex {theirs:.2} GB/s (ringhop/tokio {:.2}{of_memcpy})",
                    ours / theirs
                ));
            }
        }
    }
    c.final_summary();
    summary.print();
}

/// Copies 64 KiB blocks round-robin into 1 MiB of destination, as a pipe fills segments.
fn memcpy_rate(c: &mut Criterion) -> Option<f64> {
    const BLOCK: usize = 64 * 1024;
    // Source and destination page-aligned alike: with an arbitrary heap address the copy can
    // hit 4 KiB aliasing between loads and stores, and measured 2.5 GB/s instead of ~30
    // here (`rep movsb` at a bad relative offset), which is not the machine's rate.
    let src_buf = vec![1u8; BLOCK + 4096];
    let aligned = src_buf.as_ptr().align_offset(4096);
    let src = &src_buf[aligned..aligned + BLOCK];
    let mut dst = vec![0u8; 1 << 20];
    dst.fill(2); // fault the pages in before timing
    let blocks = dst.len() / BLOCK;
    let mut tally = Tally::default();
    let mut group = c.benchmark_group("memcpy");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    group.bench_function("64KiB_blocks", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters as usize {
                let at = (i % blocks) * BLOCK;
                dst[at..at + BLOCK].copy_from_slice(std::hint::black_box(src));
                std::hint::black_box(&mut dst);
            }
            tally.record(iters, start.elapsed())
        })
    });
    group.finish();
    tally
        .per_iter()
        .map(|d| BLOCK as f64 / d.as_secs_f64() / 1e9)
}

async fn write_all(mut writer: PipeWriter, write: usize, writes: u64) {
    let data = vec![7u8; write];
    for _ in 0..writes {
        writer.write(&data);
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

fn same_reactor(runtime: &Runtime, write: usize, writes: u64) -> Duration {
    runtime.block_on_local(move || async move {
        let (reader, writer) = Pipe::new(PipeOptions::default()).unwrap();
        let start = Instant::now();
        let producer = rt::spawn_local(write_all(writer, write, writes));
        let read = read_all(reader).await;
        producer.await;
        assert_eq!(read, write * writes as usize);
        start.elapsed()
    })
}

fn cross_reactor(runtime: &Runtime, write: usize, writes: u64) -> Duration {
    let (reader, writer) = Pipe::new(PipeOptions::default()).unwrap();
    let start = Instant::now();
    let producer = runtime.handles()[1].spawn(move || write_all(writer, write, writes));
    let read = runtime.block_on(runtime.handles()[0].spawn(move || read_all(reader)));
    runtime.block_on(producer);
    let elapsed = start.elapsed();
    assert_eq!(read, write * writes as usize);
    elapsed
}

/// `tokio::io::duplex` with a 64 KiB buffer: both ends on one current_thread runtime, or the
/// writer on a second thread's runtime.
fn tokio_duplex(write: usize, writes: u64, cross_thread: bool) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = tokio::io::duplex(64 * 1024);
    let produce = async move {
        let data = vec![7u8; write];
        for _ in 0..writes {
            writer.write_all(&data).await.unwrap();
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
    let (rt, local) = support::tokio_local();
    let producer_rt = support::tokio_local().0;
    let start = Instant::now();
    let read = if cross_thread {
        let producer = std::thread::spawn(move || producer_rt.block_on(produce));
        let read = rt.block_on(consume);
        producer.join().unwrap();
        read
    } else {
        local.block_on(&rt, async move {
            let producer = tokio::task::spawn_local(produce);
            let read = consume.await;
            producer.await.unwrap();
            read
        })
    };
    let elapsed = start.elapsed();
    assert_eq!(read, write * writes as usize);
    elapsed
}
