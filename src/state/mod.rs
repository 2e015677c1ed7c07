//! Shared state: rate-limit buckets and confirmation holds behind one async trait.
//!
//! Every operation is a single atomic step (take a token; consume a hold if its binding
//! matches). The embedded backend is [`memory::MemoryState`]; [`redis`] shares state between
//! instances (one Lua script per step), behind the fail modes of [`fallback`]. Which one runs
//! is chosen here ([`Backend`]) and known nowhere else; the decisions both make are in
//! [`rules`].

mod backend;
pub mod fallback;
pub mod memory;
pub mod redis;
pub mod rules;
mod shared_sessions;

pub use backend::Backend;

use async_trait::async_trait;

/// A rate limit: sustained rate and bucket size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpec {
    pub rps: f64,
    pub burst: u64,
}

/// The result of taking one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateOutcome {
    pub allowed: bool,
    /// Bucket size (`RateLimit-Limit`).
    pub limit: u64,
    /// Whole tokens left after this call.
    pub remaining: u64,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Seconds until one token is available (`Retry-After`, at least 1 when refused).
    pub retry_after_secs: u64,
}

/// A pending confirmation, stored under the SHA-256 of its action token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    pub id: String,
    pub sub: String,
    pub tenant: String,
    pub tool_id: String,
    pub args_hash: String,
    /// SHA-256 over subject, tenant, tool and arguments hash: what the confirm must match.
    pub binding: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The held input as canonical JSON, so a REST confirm may omit it.
    pub input: Option<String>,
    /// Approver mode: the caller's own confirm needs an approval first.
    pub needs_approval: bool,
    /// Who approved it (`POST /admin/holds/{id}/approve`).
    pub approved_by: Option<String>,
    /// What the approvals console shows (who, where, why; redacted arguments). Absent in
    /// holds stored by older versions.
    #[serde(default)]
    pub view: crate::holds::HoldView,
}

/// Approximate memory of a stored hold besides its strings (map entry, key, fields).
pub const HOLD_OVERHEAD: usize = 256;

impl Hold {
    /// The bytes this hold is accounted for against [`HoldQuota`]: its strings, the held
    /// input included, plus [`HOLD_OVERHEAD`].
    pub fn cost(&self) -> usize {
        HOLD_OVERHEAD
            + [&self.id, &self.sub, &self.tenant, &self.tool_id, &self.args_hash, &self.binding]
                .iter()
                .map(|s| s.len())
                .sum::<usize>()
            + self.input.as_ref().map_or(0, String::len)
            + self.approved_by.as_ref().map_or(0, String::len)
            + self.view.cost()
    }
}

/// How many bytes pending holds may take ([`Hold::cost`]), per caller (tenant + subject) and
/// in total. Given with each `put_hold`, so a shared backend checks it in the same atomic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldQuota {
    pub per_subject_bytes: usize,
    pub total_bytes: usize,
}

/// What storing a hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldPut {
    Stored,
    /// The caller's pending holds would exceed its share: nothing stored.
    SubjectFull,
    /// All pending holds would exceed the total: nothing stored.
    TotalFull,
}

/// Who is redeeming a hold.
#[derive(Debug, Clone, Copy)]
pub enum Redeemer<'a> {
    /// The caller the hold was issued to: the binding must match, and in approver mode the
    /// hold must have been approved.
    Caller { binding: &'a str },
    /// A principal with an approver role, for the same tenant, tool and arguments. Four
    /// eyes: for a hold of its own (`sub`) an approver is only its caller — the `Caller`
    /// rules apply with `binding`, so it cannot release its own call awaiting approval.
    Approver { sub: &'a str, binding: &'a str, tenant: &'a str, tool_id: &'a str, args_hash: &'a str },
}

/// What consuming an action token found.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldConsume {
    /// Consumed now; the call may run exactly once.
    Consumed(Box<Hold>),
    /// Unknown or already used.
    NotFound,
    Expired,
    /// The token is for another subject, tool or arguments; it stays pending.
    Mismatch,
    /// Approver mode: not approved yet; it stays pending.
    AwaitingApproval,
}

/// A state backend failure (fail-closed callers map it to 503).
#[derive(Debug, Clone, thiserror::Error)]
#[error("state backend: {0}")]
pub struct StateError(pub String);

#[async_trait]
pub trait StateStore: Send + Sync {
    /// Takes one token from bucket `key`.
    async fn take_token(&self, key: &str, spec: RateSpec) -> Result<RateOutcome, StateError>;
    /// Stores a hold under `token_hash` until its `expires_at`, unless the caller's pending
    /// holds or all of them would then exceed `quota`.
    async fn put_hold(&self, token_hash: &str, hold: Hold, quota: HoldQuota) -> Result<HoldPut, StateError>;
    /// Atomically removes and returns the hold if `who` may redeem it and it has not expired.
    async fn consume_hold(&self, token_hash: &str, who: Redeemer<'_>) -> Result<HoldConsume, StateError>;
    /// The pending hold under `token_hash`, without consuming it (a REST confirm that omits
    /// the input reads the held one).
    async fn peek_hold(&self, token_hash: &str) -> Result<Option<Hold>, StateError>;
    /// Holds still pending (for the gauge).
    async fn pending_holds(&self) -> Result<usize, StateError>;
    /// Every pending hold (`GET /admin/holds`), soonest expiry first.
    async fn list_holds(&self) -> Result<Vec<Hold>, StateError>;
    /// Approves (marks) or denies (removes) hold `id`; false when there is no such hold.
    async fn decide_hold(&self, id: &str, approve: bool, by: &str) -> Result<bool, StateError>;
}
