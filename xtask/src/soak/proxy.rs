//! A TCP proxy that can cut or stall what passes through it. The soak puts one in
//! front of PostgreSQL and one in front of OpenBao, so it can fail them without
//! touching the servers themselves (the machine's PostgreSQL serves other tests).
//! Written here because the fault proxies that exist (toxiproxy) are separate
//! services in Go, and this one needs nothing but tokio's copy.

use std::net::SocketAddr;

use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Pass,
    /// Closes every connection, open or new: the server looks down.
    Cut,
    /// Holds every connection, open or new, without forwarding a byte: the server
    /// looks hung. Held connections are closed when the stall ends.
    Stall,
}

/// A running proxy on a loopback port; stops when dropped.
pub struct FaultProxy {
    /// The port clients connect to instead of the server's.
    pub port: u16,
    mode: watch::Sender<Mode>,
    accepting: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, watcher) = watch::channel(Mode::Pass);
        let accepting = tokio::spawn(async move {
            loop {
                if let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, upstream, watcher.clone()));
                }
            }
        });
        Ok(Self {
            port,
            mode,
            accepting,
        })
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
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Forwards one client connection while the proxy passes traffic.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
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
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
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
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
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
