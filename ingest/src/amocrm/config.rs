//! `kind = "amocrm"`: an amoCRM account's address, token, stage map and pacing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dealhouse_warehouse::config::{ConfigIssue, KeyPath, VocabulariesConfig};
use dealhouse_warehouse::schema::STAGES;
use serde::Deserialize;
use url::Url;

use super::wire::{MAX_REQUESTS_PER_SECOND, TASK_TYPE_CALL, TASK_TYPE_MEETING};
use crate::source_config::{default_chunk_rows, default_lookback, default_max_retry_seconds};

/// `kind = "amocrm"`: an amoCRM account read through API v4.
///
/// Stages are keyed by pipeline and status, because status ids are per pipeline; statuses 142
/// (won) and 143 (lost) exist in every pipeline and are never mapped here:
///
/// ```toml
/// [sources.amo.stages.3166396]   # pipeline id
/// 33929749 = "new"               # status id = canonical stage
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmoCrmConfig {
    /// The account's address, `https://<subdomain>.amocrm.ru` (no path). Required unless
    /// `simulate_from` is set.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the long-lived access token (preferred).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the long-lived access token (relative to the project directory); surrounding
    /// whitespace is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Serve this folder of recorded account data (`leads.jsonl`, `events.jsonl`, `users.jsonl`,
    /// `pipelines.jsonl`, `companies.jsonl`, `loss_reasons.jsonl`, `tasks.jsonl`,
    /// `leads_notes.jsonl`, `contacts_notes.jsonl`, `companies_notes.jsonl`) through a local
    /// amoCRM API and pull from it (demo projects and tests). Relative to the project directory.
    #[serde(default)]
    pub simulate_from: Option<PathBuf>,
    /// Pipeline id -> (status id -> canonical stage: new, contact, proposal, negotiation or
    /// contract). Won (142) and lost (143) are fixed by amoCRM and need no entry.
    #[serde(default)]
    pub stages: BTreeMap<String, BTreeMap<String, String>>,
    /// Task type id -> canonical activity type (call, meeting, email, proposal_sent,
    /// contract_signed or task), on top of the built-in 1 = call ("Звонок") and 2 = meeting
    /// ("Встреча"); an entry for 1 or 2 replaces the built-in one. Types not listed are `task`.
    ///
    /// ```toml
    /// [sources.amo.task_types]
    /// 2811130 = "proposal_sent"   # an account's own task type
    /// ```
    #[serde(default)]
    pub task_types: BTreeMap<String, String>,
    /// Seconds re-read before the last cursor (amoCRM timestamps are whole seconds).
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
    /// Share of the agent's commission in the lead's price (`"0.1"` = 10%); unset leaves
    /// `commission` empty.
    #[serde(default)]
    pub commission_rate: Option<rust_decimal::Decimal>,
    /// Company custom field (`field_id`) holding the taxpayer number (INN), if the account has one.
    #[serde(default)]
    pub inn_field_id: Option<i64>,
    /// Requests a second the connector sends at most; amoCRM answers 429 above 7.
    #[serde(default = "default_amocrm_rps")]
    pub requests_per_second: u32,
    /// Give up on a request after retrying throttled or failed calls (HTTP 429, 5xx, connection
    /// errors) for this many seconds in total; what was committed before stays.
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
    /// Rows per committed chunk: a failed sync keeps the chunks committed before it.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    /// ISO 4217 code of the money this source's rows carry when a row names none (a `currency`
    /// column, Bitrix24's CURRENCY_ID); default the reporting currency (`[reporting]`).
    #[serde(default)]
    pub currency: Option<String>,
}

fn default_amocrm_rps() -> u32 {
    MAX_REQUESTS_PER_SECOND
}

/// Task types every amoCRM account has, and their canonical activity types.
const BUILT_IN_TASK_TYPES: [(i64, &str); 2] = [(TASK_TYPE_CALL, "call"), (TASK_TYPE_MEETING, "meeting")];

impl AmoCrmConfig {
    /// The canonical activity type of a task of type `task_type_id`: `task_types`, then the
    /// built-in types, else `task`.
    pub(crate) fn task_type(&self, task_type_id: i64) -> &str {
        let configured = self.task_types.iter().find(|(id, _)| id.trim().parse::<i64>().ok() == Some(task_type_id));
        match configured {
            Some((_, kind)) => kind,
            None => BUILT_IN_TASK_TYPES.iter().find(|(id, _)| *id == task_type_id).map_or("task", |(_, kind)| kind),
        }
    }

    /// An address and a token (or recorded data), open stages by pipeline and status ids, and
    /// pacing within the API's limits. `at` is `sources.<name>`.
    pub(crate) fn validate(&self, at: &KeyPath, vocabularies: &VocabulariesConfig) -> Result<(), ConfigIssue> {
        match (&self.base_url, &self.simulate_from) {
            (Some(url), _) => check_amocrm_url(url).map_err(|m| at.key("base_url").issue(m))?,
            (None, Some(_)) => {}
            (None, None) => {
                return Err(at.issue(
                    "set base_url = \"https://<subdomain>.amocrm.ru\" and token_env (or simulate_from for recorded data)",
                ));
            }
        }
        match (&self.token_env, &self.token_file) {
            (Some(_), Some(_)) => return Err(at.key("token_file").issue("set token_env or token_file, not both")),
            (Some(var), None) if var.trim().is_empty() => {
                return Err(at.key("token_env").issue("the variable name is empty"));
            }
            (None, None) if self.base_url.is_some() => {
                return Err(at
                    .key("token_env")
                    .issue("set token_env = \"AMO_TOKEN\" (the variable holding the long-lived token) or token_file"));
            }
            _ => {}
        }
        for (pipeline, statuses) in &self.stages {
            let pkey = at.keys(["stages", pipeline.as_str()]);
            if pipeline.trim().parse::<i64>().is_err() {
                return Err(pkey.issue(format!("`{pipeline}` is not a pipeline id (a number)")));
            }
            for (status, stage) in statuses {
                let skey = pkey.key(status.as_str());
                match status.trim().parse::<i64>() {
                    Err(_) => return Err(skey.issue(format!("`{status}` is not a status id (a number)"))),
                    Ok(142 | 143) => {
                        return Err(
                            skey.issue("statuses 142 (won) and 143 (lost) are fixed by amoCRM; remove this entry")
                        );
                    }
                    Ok(_) => {}
                }
                if !STAGES.contains(&stage.as_str()) || matches!(stage.as_str(), "won" | "lost") {
                    return Err(skey.issue(format!(
                        "`{stage}` is not an open canonical stage (new, contact, proposal, negotiation, contract); \
                         won and lost come from statuses 142 and 143"
                    )));
                }
            }
        }
        for (id, kind) in &self.task_types {
            let key = at.keys(["task_types", id.as_str()]);
            if !id.trim().parse::<i64>().is_ok_and(|i| i > 0) {
                return Err(key.issue(format!("`{id}` is not a task type id (a positive number)")));
            }
            let known = vocabularies.activity_types();
            if !known.contains(&kind.as_str()) {
                return Err(key.issue(format!(
                    "`{kind}` is not a canonical activity type ({}); map the task type to one of them, or add \
                     `{kind}` to `activity_type` in [vocabularies]; the account's task types are listed by \
                     GET /api/v4/account?with=task_types",
                    known.join(", ")
                )));
            }
        }
        if self.requests_per_second == 0 || self.requests_per_second > MAX_REQUESTS_PER_SECOND {
            return Err(at.key("requests_per_second").issue(format!(
                "must be between 1 and {MAX_REQUESTS_PER_SECOND} (amoCRM answers 429 above {MAX_REQUESTS_PER_SECOND} a second)"
            )));
        }
        if self.chunk_rows == 0 {
            return Err(at.key("chunk_rows").issue("must be at least 1"));
        }
        if let Some(rate) = self.commission_rate
            && (rate.is_sign_negative() || rate > rust_decimal::Decimal::ONE)
        {
            return Err(at
                .key("commission_rate")
                .issue(format!("`{rate}` is not a share between 0 and 1 (e.g. \"0.1\")")));
        }
        Ok(())
    }
}

/// An account address: http(s), a host, no path, query or credentials.
fn check_amocrm_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| format!("`{url}` is not a valid URL ({e}); expected https://<subdomain>.amocrm.ru"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}`: expected https://<subdomain>.amocrm.ru"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not carry credentials; put the token in the variable named by token_env".into());
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(format!(
            "`{url}` has a path or query; give the account address only, e.g. https://<subdomain>.amocrm.ru"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::source_config::SourceConfig;
    use crate::source_config::tests::parse;

    #[test]
    fn amocrm_sources_are_validated_with_line_and_key() {
        let ok = "[sources.amo]\nkind = \"amocrm\"\nbase_url = \"https://acme.amocrm.ru\"\ntoken_env = \"AMO_TOKEN\"\n\
                  commission_rate = \"0.1\"\n\n[sources.amo.stages.3166396]\n33929749 = \"new\"\n33929752 = \"proposal\"\n";
        let c = parse(ok).unwrap();
        let Some(SourceConfig::AmoCrm(a)) = c.get("amo") else { panic!("not parsed as amocrm") };
        assert_eq!(c["amo"].kind(), "amocrm");
        assert_eq!(a.stages["3166396"]["33929752"], "proposal");
        assert_eq!((a.lookback_seconds, a.requests_per_second, a.max_retry_seconds), (300, 7, 300));
        let e = parse(&ok.replace("33929752 = \"proposal\"", "142 = \"contract\"")).unwrap_err().to_string();
        assert!(
            e.contains(":9") && e.contains("sources.amo.stages.3166396.142") && e.contains("fixed by amoCRM"),
            "{e}"
        );
        let e = parse(&ok.replace("\"proposal\"", "\"won\"")).unwrap_err().to_string();
        assert!(e.contains("not an open canonical stage"), "{e}");
        let e = parse(&ok.replace("acme.amocrm.ru", "acme.amocrm.ru/api/v4")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.amo.base_url") && e.contains("account address only"), "{e}");
        let e = parse(&ok.replace("token_env = \"AMO_TOKEN\"", "token = \"secret\"")).unwrap_err().to_string();
        assert!(e.contains(":4: key `sources.amo.token`") && e.contains("unknown field `token`"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let e = parse(&ok.replace("token_env = \"AMO_TOKEN\"", "")).unwrap_err().to_string();
        assert!(e.contains("sources.amo.token_env"), "{e}");
        let e = parse(&ok.replace("commission_rate = \"0.1\"", "requests_per_second = 10")).unwrap_err().to_string();
        assert!(e.contains(":5") && e.contains("between 1 and 7"), "{e}");
    }

    #[test]
    fn amocrm_task_types_have_defaults_and_are_validated_with_line_and_key() {
        let base = "[sources.amo]\nkind = \"amocrm\"\nsimulate_from = \"account\"\n";
        let amo = |text: &str| match parse(text).map(|c| c.get("amo").cloned()) {
            Ok(Some(SourceConfig::AmoCrm(a))) => Ok(a),
            Ok(_) => panic!("not parsed as amocrm"),
            Err(e) => Err(e.to_string()),
        };
        let a = amo(base).unwrap();
        assert_eq!([a.task_type(1), a.task_type(2), a.task_type(3)], ["call", "meeting", "task"]);
        let a = amo(&format!("{base}\n[sources.amo.task_types]\n1 = \"task\"\n2811130 = \"proposal_sent\"\n")).unwrap();
        assert_eq!(
            [a.task_type(1), a.task_type(2), a.task_type(2811130)],
            ["task", "meeting", "proposal_sent"],
            "an entry replaces a built-in type; the others stay"
        );
        let e = amo(&format!("{base}\n[sources.amo.task_types]\n2 = \"meeting\"\n3 = \"visit\"\n")).unwrap_err();
        assert!(
            e.contains(":7")
                && e.contains("sources.amo.task_types.3")
                && e.contains("`visit` is not a canonical activity type")
                && e.contains("[vocabularies]"),
            "{e}"
        );
        // A type the project adds in [vocabularies] is one a task type may map to.
        let visits =
            format!("[vocabularies]\nactivity_type = [\"visit\"]\n\n{base}\n[sources.amo.task_types]\n3 = \"visit\"\n");
        assert_eq!(amo(&visits).unwrap().task_type(3), "visit");
        let e = amo(&format!("{base}\n[sources.amo.task_types]\nfollow_up = \"call\"\n")).unwrap_err();
        assert!(
            e.contains(":6") && e.contains("sources.amo.task_types.follow_up") && e.contains("not a task type id"),
            "{e}"
        );
    }
}
