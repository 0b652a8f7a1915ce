//! The connection layer: the accept loop and the limits that keep one client from shutting
//! the others out (see `docs/security.md`).
//!
//! - **Header timeout** (hyper's `header_read_timeout`): a connection must deliver a complete
//!   request head within `header_timeout` of starting to wait for one (slowloris).
//! - **Idle timeout**: a connection with no request in flight that has sent nothing for
//!   `idle_timeout` is closed (idle keep-alive connections).
//! - **Connection cap** (`max_connections`): at the cap a new connection closes the connection
//!   that has been idle longest (no request in flight); when every connection is busy it is
//!   answered `503` with `Retry-After` and closed, never left waiting.
//!
//! The cap on requests in flight is a tower layer of the router (see [`crate::router`]).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// The connection limits (from [`crate::ServerConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub retry_after_secs: u64,
}

/// Connections beyond the cap that are being answered 503 or wait for an evicted slot.
const MAX_OVERFLOW: usize = 256;
/// How long an over-cap connection waits for an evicted connection's slot, and how long a shed
/// connection is drained before it is dropped.
const OVERFLOW_WAIT: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

struct Conn {
    /// Requests in flight on this connection.
    busy: AtomicUsize,
    /// Milliseconds since [`Registry::epoch`] of the last byte read or response finished.
    last_active: AtomicU64,
    evict: Notify,
    /// Set when this connection is asked to make room: where its slot goes when it ends.
    handoff: Mutex<Option<oneshot::Sender<OwnedSemaphorePermit>>>,
}

struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
            handoff: Mutex::new(None),
        });
        self.lock().insert(id, c.clone());
        (id, c)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Asks the connection idle longest (no request in flight) to close and hand its slot
    /// over; `None` if every connection is busy.
    fn evict_idlest(&self) -> Option<oneshot::Receiver<OwnedSemaphorePermit>> {
        let mut conns = self.lock();
        let victim = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let c = conns.remove(&victim?)?;
        let (tx, rx) = oneshot::channel();
        *c.handoff.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        c.evict.notify_one();
        Some(rx)
    }
}

/// Marks a request in flight on its connection for as long as it lives.
struct Busy {
    conn: Arc<Conn>,
    reg: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, reg: Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy { conn, reg }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .last_active
            .store(self.reg.now_ms(), Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that records when it last read a byte.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
    reg: Arc<Registry>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn
                .last_active
                .store(this.reg.now_ms(), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

struct Shared {
    app: Router,
    limits: Limits,
    reg: Arc<Registry>,
    slots: Arc<Semaphore>,
    overflow: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

/// Serves `app` on `listener` until `shutdown` fires, then lets requests in flight finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut shutdown: oneshot::Receiver<()>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        app,
        limits,
        reg: Arc::new(Registry {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        }),
        slots: Arc::new(Semaphore::new(max)),
        overflow: Arc::new(Semaphore::new(MAX_OVERFLOW)),
        stop,
    });
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        if let Ok(slot) = shared.slots.clone().try_acquire_owned() {
            tokio::spawn(serve_conn(stream, shared.clone(), slot));
            continue;
        }
        let Ok(extra) = shared.overflow.clone().try_acquire_owned() else {
            // Far over the cap: drop without a word rather than hold another descriptor.
            continue;
        };
        let handed = shared.reg.evict_idlest();
        let sh = shared.clone();
        tokio::spawn(async move {
            if let Some(rx) = handed {
                if let Ok(Ok(slot)) = tokio::time::timeout(OVERFLOW_WAIT, rx).await {
                    drop(extra);
                    serve_conn(stream, sh, slot).await;
                    return;
                }
            }
            tracing::debug!(status = 503, "connection limit reached: connection shed");
            shed(stream, sh.limits.retry_after_secs).await;
            drop(extra);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: having them all back means all are done.
    let _ = shared.slots.acquire_many(max as u32).await;
    Ok(())
}

async fn serve_conn(stream: TcpStream, sh: Arc<Shared>, slot: OwnedSemaphorePermit) {
    let (id, conn) = sh.reg.add();
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: conn.clone(),
        reg: sh.reg.clone(),
    });
    let (c2, r2, app) = (conn.clone(), sh.reg.clone(), sh.app.clone());
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let busy = Busy::new(c2.clone(), r2.clone());
        let app = app.clone();
        async move {
            let r = app.oneshot(req).await;
            drop(busy);
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(sh.limits.header_timeout)
        .keep_alive(true);
    let c = builder.serve_connection(io, svc);
    tokio::pin!(c);
    let idle = sh.limits.idle_timeout;
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    let mut stop = sh.stop.clone();
    let mut closing = *stop.borrow();
    if closing {
        c.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = c.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = conn.evict.notified(), if !closing => {
                if conn.busy.load(Ordering::Acquire) == 0 {
                    tracing::debug!("idle connection closed to make room");
                    break;
                }
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                c.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !closing => {
                let quiet = sh.reg.now_ms().saturating_sub(conn.last_active.load(Ordering::Relaxed));
                if conn.busy.load(Ordering::Acquire) == 0 && quiet >= idle_ms {
                    tracing::debug!("idle connection closed");
                    break;
                }
            }
        }
    }
    sh.reg.remove(id);
    let handoff = conn
        .handoff
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(tx) = handoff {
        // The slot goes straight to the connection this one made room for (if it still waits).
        let _ = tx.send(slot);
    }
}

/// The answer to a connection over the cap: `503` with `Retry-After`, then close (draining what
/// the client sends for a moment so that it reads the answer rather than a reset).
async fn shed(mut stream: TcpStream, retry_after_secs: u64) {
    let body = serde_json::json!({
        "error": "overloaded",
        "message": "too many connections; retry later",
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {retry_after_secs}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(OVERFLOW_WAIT, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        while stream.read(&mut buf).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
}

/// Raises this process's soft limit on open files towards `wanted` (at most the hard limit);
/// returns the limit now in force.
pub fn raise_fd_limit(wanted: u64) -> io::Result<u64> {
    rlimit::increase_nofile_limit(wanted)
}
