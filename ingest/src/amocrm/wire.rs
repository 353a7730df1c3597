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

/// Tasks (calls, meetings, to-dos linked to leads, contacts or companies), paged.
pub const TASKS: &str = "/api/v4/tasks";
/// Notes of leads, paged; each note list is per entity type.
pub const LEAD_NOTES: &str = "/api/v4/leads/notes";
/// Notes of contacts, paged.
pub const CONTACT_NOTES: &str = "/api/v4/contacts/notes";
/// Notes of companies, paged.
pub const COMPANY_NOTES: &str = "/api/v4/companies/notes";

/// `entity_type` of a task linked to a lead (and the notes path's first segment).
pub const ENTITY_LEADS: &str = "leads";
/// `entity_type` of a task linked to a contact.
pub const ENTITY_CONTACTS: &str = "contacts";
/// `entity_type` of a task linked to a company.
pub const ENTITY_COMPANIES: &str = "companies";

/// Note type of an incoming call.
pub const CALL_IN: &str = "call_in";
/// Note type of an outgoing call.
pub const CALL_OUT: &str = "call_out";

/// Task type id of "Звонок" (call; Kommo's English interface names it "Follow-up").
pub const TASK_TYPE_CALL: i64 = 1;
/// Task type id of "Встреча" (meeting). Accounts add their own types with other ids.
pub const TASK_TYPE_MEETING: i64 = 2;

/// `params.call_status` of a call note, as amoCRM's own PHP library (`CallInterface`) numbers
/// them, with what each means.
pub const CALL_STATUSES: [(i64, &str); 8] = [
    (1, "left a message"),
    (2, "call back later"),
    (3, "not in place"),
    (4, "conversation held"),
    (5, "wrong number"),
    (6, "not reached"),
    (7, "busy"),
    (8, "undefined"),
];
/// Call statuses of calls that did not connect: wrong number, not reached, busy.
pub const CALL_NOT_CONNECTED: [i64; 3] = [5, 6, 7];
