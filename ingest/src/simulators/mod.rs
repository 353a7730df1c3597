//! CRM simulators: in-process HTTP servers that speak a vendor's wire format over recorded or
//! in-memory data, so tests, demo projects and `simulate_from` sources pull through the same
//! connector code as a real CRM. They share the vendor constants (paths, methods, page sizes,
//! rate limits, error codes) with the connectors' `wire` modules instead of copying them.
//!
//! - [`bitrix24`]: a Bitrix24 portal behind an inbound webhook (REST, keyset paging, `batch`,
//!   leaky-bucket limiter);
//! - [`amocrm`]: an amoCRM account behind API v4 (HAL pages, bearer token, 7 requests a second).
//!
//! Tests switch on failures (throttling, 5xx, HTML answers) and read request counters; nothing
//! here is used by a connector reading a real CRM.

pub mod amocrm;
pub mod bitrix24;
