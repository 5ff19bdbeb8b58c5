//! Capture of everything `tracing` prints on the current thread, for tests that
//! scan logs for planted secrets.
//!
//! One process-wide subscriber is installed on first use and writes to the buffer
//! of whichever test is capturing on that thread. A scoped subscriber per test
//! (`tracing::subscriber::set_default`) is not enough: `tracing` caches each
//! callsite's interest across threads, and a callsite first reached by a test
//! without a subscriber can stay disabled for a test that set one, so its lines go
//! missing at random.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::format::FmtSpan;

thread_local! {
    static CURRENT: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Every line printed at any level on this thread while it lives, spans included
/// (one line as each closes). Use it with a current-thread runtime, the default of
/// `#[tokio::test]`, so that spawned tasks print on the same thread.
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

/// Starts capturing this thread's logs until the returned value is dropped.
pub fn capture() -> LogCapture {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .try_init()
            .expect("no other global tracing subscriber is installed in tests");
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    CURRENT.with(|current| *current.borrow_mut() = Some(buffer.clone()));
    LogCapture { buffer }
}

impl LogCapture {
    /// What has been printed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("log buffer")).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

/// Writes to the capturing test's buffer on this thread, or nowhere.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|current| {
            if let Some(buffer) = current.borrow().as_ref() {
                buffer.lock().expect("log buffer").extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
