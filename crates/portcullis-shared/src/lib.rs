//! # portcullis-shared
//!
//! State that must be one across every Portcullis node and every `portcullis-verify`
//! verifier, kept in Redis (`--redis-url`): the `jti`s of app-signed JWTs and RFC 7523
//! assertions, OAuth 1.0 nonces, and failed-authentication counters. Revoked token ids are
//! not here: they are decision data and travel through the store's change feed.
//!
//! Each operation is one round trip on a multiplexed connection ([`ConnectionManager`],
//! which reconnects by itself): a `jti` or a nonce is `SET key 1 NX EX ttl` (first use
//! wins, on every node at once), a failure is `INCR` + `EXPIRE NX` in one pipeline, and the
//! blocked check is one `MGET`. Every call has a deadline ([`Shared::timeout`]) so a
//! stalled Redis cannot hold a request. An unreachable Redis fails closed for `jti`s
//! ([`Shared::settle_decision`] refuses the request itself) and nonces, and open for
//! failure limits (docs/operations.md says why).
//!
//! Keys: `pc:jti:<scope>:<jti>`, `pc:nonce:<client>:<timestamp>:<nonce>`,
//! `pc:fail:a:<address>` and `pc:fail:p:<address>:<app>`, all under an optional prefix so
//! several clusters can share one Redis.

use portcullis_core::app_jwt::{DeferredJti, PendingJti};
use portcullis_core::gateway::{Allow, Code, DPOP_SCOPE_PREFIX, Denial, dpop_replayed, replayed};
use redis::aio::ConnectionManager;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("the shared store (Redis) cannot be reached: {0}")]
    Unreachable(String),
    #[error("the shared store (Redis) did not answer within {0:?}")]
    Timeout(Duration),
}

/// Seconds a `jti` is kept past the last second its JWT or proof could be accepted.
pub const JTI_MARGIN: i64 = 5;

/// A handle on the shared store; cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct Shared {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How long one call may take before it counts as a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

impl Shared {
    /// Connect to `url` (`redis://host:port/db`, `rediss://…` for TLS); fails when Redis
    /// cannot be reached now (a node should not start believing it shares state it does
    /// not). Later outages are survived: the connection reconnects by itself.
    pub async fn connect(url: &str) -> Result<Self, SharedError> {
        let client =
            redis::Client::open(url).map_err(|e| SharedError::Unreachable(e.to_string()))?;
        let conn = tokio::time::timeout(DEFAULT_TIMEOUT * 4, ConnectionManager::new(client))
            .await
            .map_err(|_| SharedError::Timeout(DEFAULT_TIMEOUT * 4))?
            .map_err(|e| SharedError::Unreachable(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: "pc:".into(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Keys start with `prefix` (default `pc:`): tests and clusters sharing one Redis keep
    /// apart.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        f: impl FnOnce(&mut redis::Pipeline),
    ) -> Result<T, SharedError> {
        let mut pipe = redis::pipe();
        f(&mut pipe);
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
            .await
            .map_err(|_| SharedError::Timeout(self.timeout))?
            .map_err(|e| SharedError::Unreachable(e.to_string()))
    }

    /// `SET key 1 NX EX ttl`: whether this call was the first to set it.
    async fn first(&self, key: String, ttl: i64) -> Result<bool, SharedError> {
        let (set,): (Option<String>,) = self
            .run(|p| {
                p.cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.max(1));
            })
            .await?;
        Ok(set.is_some())
    }

    /// Record `jti` of `scope` (the client id) until `until` (unix seconds); whether it is
    /// its first use anywhere.
    pub async fn first_use_jti(
        &self,
        scope: &str,
        jti: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, SharedError> {
        // Kept past `until` by a margin: the check that accepts up to and including the
        // second `until` may run on a node whose clock is a little behind this store's.
        self.first(
            format!("{}jti:{scope}:{jti}", self.prefix),
            until - now + JTI_MARGIN,
        )
        .await
    }

    /// Spend, in order, the JWT ids a decision or a grant reached (collected by a
    /// [`DeferredJti`]), each on its first use anywhere. `Ok(None)` when every one was a
    /// first use; `Ok(Some(i))` names the first that was seen before (the ones after it are
    /// not spent). The one function every path that accepts a JWT an app signed goes
    /// through — the gateway, the token endpoint and the verifier library — so a `jti`
    /// spent on one is spent on all.
    pub async fn confirm_first_use(
        &self,
        pending: &[PendingJti],
        now: i64,
    ) -> Result<Option<usize>, SharedError> {
        for (i, p) in pending.iter().enumerate() {
            if !self.first_use_jti(&p.scope, &p.jti, p.until, now).await? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// A gateway decision made with `jti` as its replay check, once the `jti` it reached
    /// (an app-signed JWT's or a DPoP proof's; at most one) is spent here: a replay whatever the decision
    /// said (the decision checks the `jti` before anything that could still refuse), and
    /// refused when this store cannot be reached (fail closed: without the shared record
    /// a replay could pass). The server's gateway and the verifier library both end here.
    pub async fn settle_decision(
        &self,
        jti: &DeferredJti,
        decided: Result<Allow, Denial>,
        now: i64,
    ) -> Result<Allow, Denial> {
        let pending = jti.take();
        if pending.is_empty() {
            return decided;
        }
        match self.confirm_first_use(&pending, now).await {
            Ok(None) => decided,
            Ok(Some(i)) if pending[i].scope.starts_with(DPOP_SCOPE_PREFIX) => Err(dpop_replayed()),
            Ok(Some(_)) => Err(replayed()),
            Err(e) => {
                tracing::warn!(error = %e, "shared store unreachable; refusing an app-signed JWT or DPoP proof");
                Err(Denial {
                    code: Code::RateLimited,
                    detail: "App-signed JWTs and DPoP proofs cannot be checked against replay right now (the replay store shared by every node and verifier cannot be reached); retry shortly (a bearer access token without DPoP does not need this store).".into(),
                    retry_after: Some(5),
                })
            }
        }
    }

    /// Record an OAuth 1.0 nonce of `client` at `timestamp`, kept `ttl` seconds; whether
    /// it is its first use anywhere.
    pub async fn first_use_nonce(
        &self,
        client: &str,
        timestamp: i64,
        nonce: &str,
        ttl: i64,
    ) -> Result<bool, SharedError> {
        self.first(
            format!("{}nonce:{client}:{timestamp}:{nonce}", self.prefix),
            ttl,
        )
        .await
    }

    fn failure_keys(&self, addr: &str, app: Option<&str>) -> Vec<String> {
        let mut keys = vec![format!("{}fail:a:{addr}", self.prefix)];
        if let Some(app) = app {
            keys.push(format!("{}fail:p:{addr}:{app}", self.prefix));
        }
        keys
    }

    /// Count one failed authentication from `addr` (and `addr` with `app`), each counter
    /// in a window of `window` seconds from its first failure.
    pub async fn record_failure(
        &self,
        addr: &str,
        app: Option<&str>,
        window: i64,
    ) -> Result<(), SharedError> {
        let keys = self.failure_keys(addr, app);
        self.run::<()>(|p| {
            for k in &keys {
                p.cmd("INCR").arg(k).ignore();
                p.cmd("EXPIRE").arg(k).arg(window.max(1)).arg("NX").ignore();
            }
        })
        .await
    }

    /// `Some(seconds until its window ends)` when `addr`, or `addr` with `app`, has
    /// `limit` or more failures in its current window.
    pub async fn failures(
        &self,
        addr: &str,
        app: Option<&str>,
        limit: u32,
    ) -> Result<Option<u64>, SharedError> {
        let keys = self.failure_keys(addr, app);
        let mut counts_ttls: Vec<Option<i64>> = self
            .run(|p| {
                for k in &keys {
                    p.cmd("GET").arg(k);
                    p.cmd("TTL").arg(k);
                }
            })
            .await?;
        let mut retry = None;
        while counts_ttls.len() >= 2 {
            let ttl = counts_ttls.pop().flatten();
            let count = counts_ttls.pop().flatten();
            if count.is_some_and(|c| c >= i64::from(limit)) {
                let left = ttl.filter(|t| *t > 0).unwrap_or(1) as u64;
                retry = Some(retry.map_or(left, |r: u64| r.max(left)));
            }
        }
        Ok(retry)
    }
}
