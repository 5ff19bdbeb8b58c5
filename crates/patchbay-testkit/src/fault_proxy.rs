//! A loopback TCP proxy that fails what passes through it on demand: cut (the server
//! looks down), stall (it looks hung), or drop one connection right after the client
//! sent a given message (its answer is lost). Tests and `cargo xtask soak` put it in
//! front of PostgreSQL and OpenBao, so they can fail them without touching the
//! servers themselves. Written here because the fault proxies that exist
//! (toxiproxy) are separate services in Go, and this needs nothing but tokio.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Pass,
    /// Closes every connection, open or new.
    Cut,
    /// Holds every connection, open or new, without forwarding a byte; held
    /// connections are closed when the stall ends.
    Stall,
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    lose_answer_to: Arc<Mutex<Option<Vec<u8>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (mode, watcher) = watch::channel(Mode::Pass);
        let lose_answer_to = Arc::new(Mutex::new(None));
        let trigger = lose_answer_to.clone();
        let accepting = tokio::spawn(async move {
            loop {
                if let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, upstream, watcher.clone(), trigger.clone()));
                }
            }
        });
        Ok(Self {
            address,
            mode,
            lose_answer_to,
            accepting,
        })
    }

    /// The address clients use instead of the server's.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Holds every connection without forwarding until [`FaultProxy::restore`].
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Arms a one-shot fault: the next connection whose client sends bytes containing
    /// `message` has them delivered to the server, then is closed before the server's
    /// answer reaches the client. For a database, `b"COMMIT"` makes a commit whose
    /// outcome the client cannot know.
    pub fn lose_answer_to(&self, message: &[u8]) {
        *self.lose_answer_to.lock().expect("trigger") = Some(message.to_vec());
    }

    /// Whether the one-shot fault armed by [`FaultProxy::lose_answer_to`] has fired.
    pub fn answer_lost(&self) -> bool {
        self.lose_answer_to.lock().expect("trigger").is_none()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Forwards one client connection while the proxy passes traffic.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
) {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Pass => break,
            Mode::Cut => return,
            Mode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut server_reads, mut server_writes) = server.into_split();
    let (answer_lost, mut lost) = watch::channel(false);
    let upward = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match client_reads.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            let fire = {
                let mut armed = trigger.lock().expect("trigger");
                let matches = armed.as_deref().is_some_and(|message| {
                    chunk.windows(message.len()).any(|window| window == message)
                });
                if matches {
                    *armed = None;
                }
                matches
            };
            if fire {
                answer_lost.send_replace(true);
            }
            if server_writes.write_all(chunk).await.is_err() {
                return;
            }
            if fire {
                // Let the server act on the message, then drop the connection.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
        }
    };
    let downward = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match server_reads.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if *lost.borrow_and_update() {
                // The server answered the armed message: the client never sees it.
                return;
            }
            if client_writes.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    let fault = async {
        loop {
            if mode.changed().await.is_err() {
                return Mode::Cut;
            }
            let current = *mode.borrow_and_update();
            if current != Mode::Pass {
                return current;
            }
        }
    };
    tokio::select! {
        _ = upward => {}
        _ = downward => {}
        fault = fault => {
            if fault == Mode::Stall {
                // Hold both sockets, silent, until the stall ends.
                while *mode.borrow_and_update() == Mode::Stall {
                    if mode.changed().await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}
