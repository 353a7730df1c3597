//! The Bitrix24 REST wire format, defined once: page sizes, method names, fields and error
//! codes that the connector sends and reads, and that the Bitrix24 simulator
//! ([`crate::simulators::bitrix24`]) and the demo's recorded portal follow.

/// Rows a list method returns per page.
pub const PAGE_SIZE: usize = 50;
/// Most commands one `batch` call may carry.
pub const MAX_BATCH: usize = 50;

/// Departments (the branch tree).
pub const DEPARTMENT_GET: &str = "department.get";
/// Users (managers).
pub const USER_GET: &str = "user.get";
/// Status dictionaries (deal stages with their semantics).
pub const STATUS_LIST: &str = "crm.status.list";
/// Companies (clients).
pub const COMPANY_LIST: &str = "crm.company.list";
/// Deals.
pub const DEAL_LIST: &str = "crm.deal.list";
/// Stage history (rows under `result.items`).
pub const STAGE_HISTORY_LIST: &str = "crm.stagehistory.list";
/// Activities (calls, meetings, e-mails).
pub const ACTIVITY_LIST: &str = "crm.activity.list";
/// Up to [`MAX_BATCH`] commands in one request.
pub const BATCH: &str = "batch";
/// The scopes the webhook was given.
pub const SCOPE: &str = "scope";

/// The list methods the connector reads; a recorded portal folder holds one `<method>.jsonl`
/// file for each.
pub const LIST_METHODS: [&str; 7] =
    [DEPARTMENT_GET, USER_GET, STATUS_LIST, COMPANY_LIST, DEAL_LIST, STAGE_HISTORY_LIST, ACTIVITY_LIST];

/// CRM list methods whose `select[]=*` leaves out user fields (`UF_*`): they are asked for
/// with `select[]=UF_*` as well.
pub const USER_FIELDS_APART: [&str; 2] = [COMPANY_LIST, DEAL_LIST];

/// Scopes the webhook needs (users may also be readable through `user_basic` or `user_brief`).
pub const SCOPES: [&str; 3] = ["crm", "user", "department"];

/// The record id field of every method.
pub const ID: &str = "ID";
/// CRM entity type of deals (`entityTypeId`, `OWNER_TYPE_ID`).
pub const ENTITY_DEAL: &str = "2";
/// CRM entity type of companies.
pub const ENTITY_COMPANY: &str = "4";

/// Error code: the portal's leaky bucket is full (HTTP 503); retry later.
pub const QUERY_LIMIT_EXCEEDED: &str = "QUERY_LIMIT_EXCEEDED";
/// Error code: the method used up its time budget (HTTP 429); retry later.
pub const OPERATION_TIME_LIMIT: &str = "OPERATION_TIME_LIMIT";
/// Error code: the webhook's user or code is wrong (HTTP 401).
pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
/// Error code: the method does not exist or is not in the webhook's scopes (HTTP 404).
pub const ERROR_METHOD_NOT_FOUND: &str = "ERROR_METHOD_NOT_FOUND";
