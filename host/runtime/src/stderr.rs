//! What modules write to standard error, kept (the last few KiB) so a trap report can say what
//! the module said before it died: a Rust operator's panic message is written there, then the
//! module aborts with a bare `unreachable` trap that names nothing.
//!
//! Written by hand because wasmtime-wasi's `MemoryOutputPipe` traps the guest once its
//! capacity is reached: a chatty module would die of its own logging. This one keeps the tail
//! and never refuses a write.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of a store's standard error is kept.
const KEEP: usize = 4096;

/// The kept tail of one store's standard error; clones share it.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Shared>);

#[derive(Default)]
struct Shared {
    tail: Mutex<VecDeque<u8>>,
    /// Bytes written since the store was made: marks are positions in this count.
    written: AtomicU64,
}

impl StderrTail {
    /// A position to read from later: what is written after it is [`StderrTail::since`]'s.
    pub fn mark(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }

    /// What was written after `mark` (as much of it as is kept), as one line: lines joined
    /// with ` | `, Rust's "run with `RUST_BACKTRACE=1`" hint left out. Empty when nothing was.
    pub fn since(&self, mark: u64) -> String {
        let tail = self.0.tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = self.0.written.load(Ordering::Relaxed).saturating_sub(mark);
        let skip = tail.len().saturating_sub(usize::try_from(new).unwrap_or(usize::MAX));
        let bytes: Vec<u8> = tail.iter().skip(skip).copied().collect();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(KEEP)..];
        let over = (tail.len() + bytes.len()).saturating_sub(KEEP);
        tail.drain(..over);
        tail.extend(bytes);
        self.0.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(KEEP)
    }
}

#[async_trait::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_written_after_a_mark_comes_back_as_one_line() {
        let t = StderrTail::default();
        t.push(b"earlier chatter\n");
        let mark = t.mark();
        t.push(b"\nthread '<unnamed>' panicked at src/lib.rs:9:5:\nfaulty: asked to panic\n");
        t.push(b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        assert_eq!(
            t.since(mark),
            "thread '<unnamed>' panicked at src/lib.rs:9:5: | faulty: asked to panic"
        );
        assert_eq!(t.since(t.mark()), "");
    }

    #[test]
    fn only_the_tail_is_kept_and_no_write_is_refused() {
        let mut t = StderrTail::default();
        let mark = t.mark();
        for _ in 0..100 {
            OutputStream::write(&mut t, bytes::Bytes::from(vec![b'x'; 1000])).unwrap();
        }
        OutputStream::write(&mut t, bytes::Bytes::from_static(b"\nlast words\n")).unwrap();
        let s = t.since(mark);
        assert!(s.ends_with("last words"), "{}", &s[s.len().saturating_sub(40)..]);
        assert!(s.len() <= KEEP + 8);
    }
}
