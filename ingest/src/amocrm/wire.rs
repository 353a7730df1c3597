//! The amoCRM API v4 wire format, defined once: paths, page limits, the rate limit and the
//! fixed status ids that the connector sends and reads, and that the amoCRM simulator
//! ([`crate::simulators::amocrm`]) follows.

/// Most rows a list page carries (leads, companies, users).
pub const MAX_LIMIT: usize = 250;
/// Most events a page carries.
pub const MAX_EVENTS_LIMIT: usize = 100;
/// Rows a page carries when `limit` is absent or above the maximum.
pub const DEFAULT_LIMIT: usize = 50;
/// Requests a second an account accepts; above it the account answers 429.
pub const MAX_REQUESTS_PER_SECOND: u32 = 7;

/// Leads (deals), paged.
pub const LEADS: &str = "/api/v4/leads";
/// Companies (clients), paged.
pub const COMPANIES: &str = "/api/v4/companies";
/// Users (managers), paged.
pub const USERS: &str = "/api/v4/users";
/// Events (lead status changes), paged, newest first.
pub const EVENTS: &str = "/api/v4/events";
/// Pipelines with their statuses, not paged.
pub const PIPELINES: &str = "/api/v4/leads/pipelines";
/// Loss reasons, not paged.
pub const LOSS_REASONS: &str = "/api/v4/leads/loss_reasons";

/// The event type of a lead's status change.
pub const LEAD_STATUS_CHANGED: &str = "lead_status_changed";
/// Status id of "won" in every pipeline.
pub const WON: i64 = 142;
/// Status id of "lost" in every pipeline.
pub const LOST: i64 = 143;
