//! Pipelines semantics of one pipe, driven by hand on a plain thread.

mod common;

use std::io;
use std::task::Poll;

use common::{block_on, poll_once};
use ringhop_pipes::{Pipe, PipeOptions, SegmentPool};

fn pipe(pause: usize, resume: usize) -> (ringhop_pipes::PipeReader, ringhop_pipes::PipeWriter) {
    Pipe::new(
        PipeOptions::default()
            .pause_writer_threshold(pause)
            .resume_writer_threshold(resume),
    )
    .unwrap()
}

#[test]
fn write_flush_read_consume_releases_every_segment() {
    let (mut reader, mut writer) = pipe(0, 0);
    let buf = writer.buffer_mut(5);
    buf[..5].copy_from_slice(b"hello");
    writer.advance(5).unwrap();
    // Nothing is visible before the flush.
    assert!(reader.try_read().is_none());
    block_on(writer.flush()).unwrap();
    let result = reader.try_read().unwrap().unwrap();
    assert_eq!(result.as_contiguous(), Some(&b"hello"[..]));
    assert!(!result.is_completed());
    reader.advance_to(5, 5).unwrap();
    assert_eq!(reader.buffered(), (0, 0), "an idle pipe holds no segment");
}

#[test]
fn examined_decides_whether_the_next_read_waits() {
    let (mut reader, mut writer) = pipe(0, 0);
    block_on(writer.write_all(b"GET / HTTP/1.1\r\n")).unwrap();
    let len = block_on(reader.read()).unwrap().len();
    // Consumed nothing, examined everything (an incomplete message): the next read waits.
    reader.advance_to(0, len).unwrap();
    assert!(reader.try_read().is_none());
    block_on(writer.write_all(b"Host: x\r\n\r\n")).unwrap();
    let result = block_on(reader.read()).unwrap();
    assert_eq!(result.to_vec(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let len = result.len();
    // Examined only part (but not less than before): the next read returns at once.
    reader.advance_to(4, 20).unwrap();
    let result = reader.try_read().expect("unexamined bytes remain").unwrap();
    assert_eq!(result.len(), len - 4);
    assert_eq!(result.to_vec(), b"/ HTTP/1.1\r\nHost: x\r\n\r\n");
}

#[test]
fn advance_to_rejects_inconsistent_positions_without_panicking() {
    let (mut reader, mut writer) = pipe(0, 0);
    assert!(reader.advance_to(0, 0).is_err(), "no read yet");
    block_on(writer.write_all(b"0123456789")).unwrap();
    block_on(reader.read()).unwrap();
    let err = reader.advance_to(6, 5).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(reader.advance_to(0, 11).is_err(), "beyond the result");
    reader.advance_to(0, 8).unwrap();
    block_on(writer.write_all(b"x")).unwrap();
    block_on(reader.read()).unwrap();
    assert!(reader.advance_to(0, 5).is_err(), "examined moved backwards");
    reader.advance_to(11, 11).unwrap();
}

#[test]
fn flush_pauses_at_threshold_with_hysteresis() {
    let (mut reader, mut writer) = pipe(100, 50);
    writer.write(&[1; 99]);
    assert!(poll_once(&mut writer.flush()).is_ready(), "below pause");
    writer.write(&[2; 1]);
    let mut flush = Box::pin(writer.flush());
    assert!(poll_once(&mut flush).is_pending(), "at pause");
    // Examining 40 bytes leaves 60 ≥ 50 unexamined: still paused.
    block_on(reader.read()).unwrap();
    reader.advance_to(40, 40).unwrap();
    assert!(poll_once(&mut flush).is_pending());
    block_on(reader.read()).unwrap();
    reader.advance_to(60, 60).unwrap();
    assert_eq!(
        poll_once(&mut flush).map(|r| r.unwrap().completed),
        Poll::Ready(false)
    );
}

#[test]
fn backpressure_counts_examined_not_consumed_bytes() {
    let (mut reader, mut writer) = pipe(100, 50);
    writer.write(&[0; 150]);
    let mut flush = Box::pin(writer.flush());
    assert!(poll_once(&mut flush).is_pending());
    // A parser waiting for a bigger message consumes nothing but examines everything.
    block_on(reader.read()).unwrap();
    reader.advance_to(0, 150).unwrap();
    assert!(poll_once(&mut flush).is_ready());
}

#[test]
fn completion_with_and_without_error() {
    let (mut reader, mut writer) = pipe(0, 0);
    block_on(writer.write_all(b"last")).unwrap();
    writer.complete(None);
    let result = block_on(reader.read()).unwrap();
    assert!(result.is_completed());
    assert_eq!(result.to_vec(), b"last");
    reader.advance_to(4, 4).unwrap();
    let result = block_on(reader.read()).unwrap();
    assert!(result.is_completed() && result.is_empty());

    let (mut reader, mut writer) = pipe(0, 0);
    writer.complete(Some(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "peer reset",
    )));
    let err = block_on(reader.read()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(block_on(reader.read()).unwrap().is_completed());

    let (mut reader, mut writer) = pipe(10, 5);
    writer.write(&[0; 20]);
    let mut flush = Box::pin(writer.flush());
    assert!(poll_once(&mut flush).is_pending());
    reader.complete(Some(io::Error::other("reader gave up")));
    match poll_once(&mut flush) {
        Poll::Ready(Err(err)) => assert_eq!(err.to_string(), "reader gave up"),
        other => panic!("flush did not see the reader's error: {other:?}"),
    }
    drop(flush);
    let result = block_on(writer.write_all(b"ignored")).unwrap();
    assert!(
        result.completed,
        "writes after the reader completed report completed"
    );
}

#[test]
fn bytes_written_after_complete_never_reach_the_reader() {
    // The reader was told no bytes follow: whatever the writer does next, none may.
    let (mut reader, mut writer) = pipe(0, 0);
    block_on(writer.write_all(b"last")).unwrap();
    writer.complete(None);
    let result = reader.try_read().unwrap().unwrap();
    assert!(result.is_completed() && result.len() == 4);
    reader.advance_to(4, 4).unwrap();
    // Small writes (into a segment the pipe still holds), a large one, and the flushing forms.
    writer.write(b"late");
    let err = block_on(writer.flush()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    writer.write(&[b'x'; 10_000]);
    let err = block_on(writer.write_all(b"more")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(matches!(
        writer.write_and_poll_flush(b"direct", &mut cx),
        Poll::Ready(Err(_))
    ));
    let buf = writer.buffer_mut(3);
    buf[..3].copy_from_slice(b"raw");
    writer.advance(3).unwrap();
    assert!(matches!(writer.poll_flush(&mut cx), Poll::Ready(Err(_))));
    assert_eq!(writer.unflushed_len(), 0);
    let result = reader.try_read().unwrap().unwrap();
    assert!(result.is_completed());
    assert!(result.is_empty(), "{:?}", result.to_vec());
    // And nothing was left in the pipe's segments.
    assert_eq!(reader.buffered(), (0, 0));
}

#[test]
fn cancel_pending_read_and_flush() {
    let (mut reader, mut writer) = pipe(10, 5);
    let mut read = Box::pin(reader.read());
    assert!(poll_once(&mut read).is_pending());
    drop(read);
    reader.cancel_pending_read();
    let result = block_on(reader.read()).unwrap();
    assert!(result.is_canceled());
    assert!(reader.try_read().is_none(), "the cancellation is consumed");

    writer.write(&[0; 10]);
    let mut flush = Box::pin(writer.flush());
    assert!(poll_once(&mut flush).is_pending());
    drop(flush);
    writer.cancel_pending_flush();
    assert!(block_on(writer.flush()).unwrap().canceled);
}

#[test]
fn segments_are_reused_from_the_pool() {
    let pool = SegmentPool::new(4096);
    let (mut reader, mut writer) = Pipe::new(PipeOptions::default().pool(pool.clone())).unwrap();
    for _ in 0..3 {
        writer.write(&[7; 10_000]);
        block_on(writer.flush()).unwrap();
        let len = block_on(reader.read()).unwrap().len();
        assert_eq!(len, 10_000);
        reader.advance_to(len, len).unwrap();
    }
    // 10,000 bytes span three 4 KiB segments; all came back and were reused each round.
    assert_eq!(pool.idle(), 3);
}

#[test]
fn large_writes_span_segments_and_helpers_see_across_them() {
    let (mut reader, mut writer) = pipe(0, 0);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    writer.write(&data);
    let big = writer.buffer_mut(100_000);
    assert!(big.len() >= 100_000, "segments grow for large requests");
    let too_many = big_len_plus_one(&mut writer);
    assert!(writer.advance(too_many).is_err());
    block_on(writer.flush()).unwrap();
    let result = block_on(reader.read()).unwrap();
    assert!(result.as_contiguous().is_none());
    assert_eq!(result.to_vec(), data);
    assert_eq!(result.find_byte(250), Some(250));
    let mut window = [0u8; 10];
    assert_eq!(result.copy_to(4091, &mut window), 10);
    assert_eq!(&window[..], &data[4091..4101]);
}

fn big_len_plus_one(writer: &mut ringhop_pipes::PipeWriter) -> usize {
    writer.buffer_mut(1).len() + 1
}

#[test]
fn resume_above_pause_is_a_clear_error() {
    let err = Pipe::new(
        PipeOptions::default()
            .pause_writer_threshold(10)
            .resume_writer_threshold(20),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must not exceed"));
}

#[test]
fn write_and_poll_flush_appends_after_earlier_bytes_across_segments_and_waits_when_full() {
    let (mut reader, mut writer) = pipe(64 * 1024, 32 * 1024);
    let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
    // After bytes written the usual way, and after a whole flush of its own.
    writer.write(b"head:");
    assert!(matches!(
        writer.write_and_poll_flush(b"one,", cx),
        Poll::Ready(Ok(_))
    ));
    assert!(matches!(
        writer.write_and_poll_flush(b"two,", cx),
        Poll::Ready(Ok(_))
    ));
    // Larger than a segment: spans several, in order.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let flushed = writer.write_and_poll_flush(&big, cx);
    assert!(matches!(flushed, Poll::Ready(Ok(_))));
    let mut expected = b"head:one,two,".to_vec();
    expected.extend_from_slice(&big);
    let result = reader.try_read().unwrap().unwrap();
    assert!(result.chunks().count() > 1, "the bytes span segments");
    assert_eq!(result.to_vec(), expected);
    let len = result.len();
    // Past the pause threshold, the flush waits until the reader takes bytes.
    reader.advance_to(0, 0).unwrap();
    let over = vec![7u8; 64 * 1024];
    assert!(writer.write_and_poll_flush(&over, cx).is_pending());
    let all = reader.try_read().unwrap().unwrap().len();
    assert_eq!(all, len + over.len());
    reader.advance_to(all, all).unwrap();
    assert_eq!(reader.buffered(), (0, 0), "everything consumed is released");
    // A reader that completed: the bytes are dropped, the flush says so.
    reader.complete(None);
    let done = writer.write_and_poll_flush(b"late", cx);
    assert!(matches!(done, Poll::Ready(Ok(result)) if result.completed));
}
