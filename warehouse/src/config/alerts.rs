//! `[alerts.NAME]`: rules evaluated over the warehouse after each build and on their own
//! schedule; every row a rule returns is one occurrence (identified by its `key` columns),
//! delivered once to the alert's destinations when it opens and recorded as resolved when the
//! rule stops returning it.
//!
//! Four kinds: `sql` (a query over the warehouse's tables; each row is an occurrence), `measure`
//! (a measure of the semantic layer by some dimensions, compared with a threshold, from a day of
//! the month on), `freshness` (a source whose last sync is older than `max_age`) and
//! `data_tests` (a model data test failing). The warehouse reads and checks the settings;
//! `dealhouse_api::alerts` evaluates them.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::destinations::Destination;
use super::issues::{ConfigIssue, KeyPath};

/// What an alert's rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// `sql`: every row of the query is an occurrence.
    Sql,
    /// `measure` by `by`, `below`/`above` a threshold.
    Measure,
    /// A source not synced for `max_age`.
    Freshness,
    /// A model data test failing.
    DataTests,
}

/// How a measure is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// An occurrence when the value is below the threshold.
    Below,
    /// An occurrence when the value is above the threshold.
    Above,
}

/// `[alerts.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// `sql`, `measure`, `freshness` or `data_tests`; taken from `sql` / `measure` when absent.
    #[serde(default)]
    pub kind: Option<AlertKind>,
    /// SQL over the warehouse's tables (read-only); each row is an occurrence.
    #[serde(default)]
    pub sql: Option<String>,
    /// A measure of the semantic layer (`api/metrics.toml`), e.g. `plan_completion`.
    #[serde(default)]
    pub measure: Option<String>,
    /// Dimensions the measure is computed by (`["branch"]`); the default key.
    #[serde(default)]
    pub by: Vec<String>,
    /// Dimension filters of the measure: `{ metric = ["won_amount"], level = ["branch"] }`.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
    /// An occurrence where the measure is below this decimal (`"0.5"`).
    #[serde(default)]
    pub below: Option<String>,
    /// An occurrence where the measure is above this decimal.
    #[serde(default)]
    pub above: Option<String>,
    /// Evaluate the measure only from this day of the month on (`20`); before it nothing is open.
    #[serde(default)]
    pub from_day: Option<u32>,
    /// Freshness: the sources watched (default: every `[sources.*]`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Freshness: how old the last sync may be: `90s`, `30m`, `2h`, `1d`.
    #[serde(default)]
    pub max_age: Option<String>,
    /// Data tests: the models whose tests are watched (default: all).
    #[serde(default)]
    pub models: Vec<String>,
    /// The columns that identify one occurrence (`["manager_id"]`). Measures default to `by`;
    /// freshness is keyed by `source`, data tests by `model` and `test`.
    #[serde(default)]
    pub key: Vec<String>,
    /// The text delivered, with `{column}` replaced by the row's value (`{alert}` is the name).
    #[serde(default)]
    pub message: Option<String>,
    /// Destinations (`[destinations.NAME]`) a new occurrence is delivered to.
    #[serde(default)]
    pub deliver: Vec<String>,
    /// Its own schedule, a cron expression (run by `dealhouse serve`); without one it is
    /// evaluated after each build and by `dealhouse alerts`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The cron's time zone (default: the organisation's).
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl Alert {
    /// The kind, explicit or taken from which of `sql` / `measure` is set (checked at load).
    pub fn kind(&self) -> AlertKind {
        match self.kind {
            Some(k) => k,
            None if self.measure.is_some() => AlertKind::Measure,
            None => AlertKind::Sql,
        }
    }

    /// The measure's comparison and threshold (checked at load).
    pub fn threshold(&self) -> Option<(Comparison, Decimal)> {
        match (&self.below, &self.above) {
            (Some(b), None) => b.trim().parse().ok().map(|d| (Comparison::Below, d)),
            (None, Some(a)) => a.trim().parse().ok().map(|d| (Comparison::Above, d)),
            _ => None,
        }
    }

    /// Freshness: `max_age` as a duration (checked at load).
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age.as_deref().and_then(|t| parse_duration(t).ok())
    }

    /// The columns that identify an occurrence.
    pub fn key_columns(&self) -> Vec<String> {
        match self.kind() {
            AlertKind::Sql => self.key.clone(),
            AlertKind::Measure if self.key.is_empty() => self.by.clone(),
            AlertKind::Measure => self.key.clone(),
            AlertKind::Freshness => vec!["source".into()],
            AlertKind::DataTests => vec!["model".into(), "test".into()],
        }
    }

    /// Checks one alert against the destinations and sources; `at` is `alerts.NAME`.
    pub(crate) fn validate<'a>(
        &self,
        at: &KeyPath,
        destinations: &BTreeMap<String, toml::Spanned<Destination>>,
        sources: impl Iterator<Item = &'a String> + Clone,
    ) -> Result<(), ConfigIssue> {
        let kind = self.kind();
        if self.kind.is_none() && self.sql.is_none() && self.measure.is_none() {
            return Err(at.issue(
                "say what the alert watches: `sql = \"select ...\"`, `measure = \"...\"` with `by` and `below`/`above`, \
                 or kind = \"freshness\" / \"data_tests\"",
            ));
        }
        let fields: [(&str, bool, &[AlertKind]); 10] = [
            ("sql", self.sql.is_some(), &[AlertKind::Sql]),
            ("measure", self.measure.is_some(), &[AlertKind::Measure]),
            ("by", !self.by.is_empty(), &[AlertKind::Measure]),
            ("filters", !self.filters.is_empty(), &[AlertKind::Measure]),
            ("below", self.below.is_some(), &[AlertKind::Measure]),
            ("above", self.above.is_some(), &[AlertKind::Measure]),
            ("from_day", self.from_day.is_some(), &[AlertKind::Measure]),
            ("sources", !self.sources.is_empty(), &[AlertKind::Freshness]),
            ("max_age", self.max_age.is_some(), &[AlertKind::Freshness]),
            ("models", !self.models.is_empty(), &[AlertKind::DataTests]),
        ];
        for (key, set, kinds) in fields {
            if set && !kinds.contains(&kind) {
                return Err(at
                    .key(key)
                    .issue(format!("`{key}` does not apply to a {} alert; remove it", kind_name(kind))));
            }
        }
        match kind {
            AlertKind::Sql => {
                let sql = self.sql.as_deref().unwrap_or_default();
                if sql.trim().is_empty() {
                    return Err(at.key("sql").issue("missing the query: sql = \"select manager_id, ... from ...\""));
                }
                if self.key.is_empty() {
                    return Err(at.issue(
                        "missing field `key`: the columns of the query that identify one occurrence, e.g. \
                         key = [\"manager_id\"] (an occurrence is delivered once, while the query keeps returning it)",
                    ));
                }
            }
            AlertKind::Measure => {
                if self.measure.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err(at
                        .key("measure")
                        .issue("name a measure of api/metrics.toml, e.g. measure = \"plan_completion\""));
                }
                let (key, text) = match (&self.below, &self.above) {
                    (Some(b), None) => ("below", b),
                    (None, Some(a)) => ("above", a),
                    (Some(_), Some(_)) => return Err(at.key("above").issue("give `below` or `above`, not both")),
                    (None, None) => {
                        return Err(at.issue("missing the threshold: below = \"0.5\" or above = \"...\" (a decimal)"));
                    }
                };
                if text.trim().parse::<Decimal>().is_err() {
                    return Err(at.key(key).issue(format!("`{text}` is not a decimal number such as \"0.5\"")));
                }
                if let Some(day) = self.from_day
                    && !(1..=28).contains(&day)
                {
                    return Err(at
                        .key("from_day")
                        .issue(format!("a day of the month from 1 to 28 (every month has it); got {day}")));
                }
                if self.by.is_empty() && !self.key.is_empty() {
                    return Err(at.key("key").issue("a measure's key is among its `by` dimensions; add `by`"));
                }
                if let Some(k) = self.key.iter().find(|k| !self.by.contains(k)) {
                    return Err(at.key("key").issue(format!(
                        "`{k}` is not one of `by` ({}): a measure's rows hold only those",
                        self.by.join(", ")
                    )));
                }
            }
            AlertKind::Freshness => {
                let text = self
                    .max_age
                    .as_deref()
                    .ok_or_else(|| at.issue("missing field `max_age`: how old a sync may be, e.g. max_age = \"2h\""))?;
                parse_duration(text).map_err(|m| at.key("max_age").issue(m))?;
                for (i, s) in self.sources.iter().enumerate() {
                    if !sources.clone().any(|known| known == s) {
                        let known: Vec<&str> = sources.clone().map(String::as_str).collect();
                        return Err(at.key("sources").index(i).issue(format!(
                            "no source `{s}` in [sources]; sources: {}",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        )));
                    }
                }
            }
            AlertKind::DataTests => {}
        }
        if matches!(kind, AlertKind::Freshness | AlertKind::DataTests) && !self.key.is_empty() {
            return Err(at.key("key").issue(format!(
                "a {} alert's key is fixed ({}); remove `key`",
                kind_name(kind),
                self.key_columns().join(", ")
            )));
        }
        if let Some(message) = &self.message {
            check_template(message).map_err(|m| at.key("message").issue(m))?;
        }
        for (i, name) in self.deliver.iter().enumerate() {
            if !destinations.contains_key(name) {
                let known: Vec<&str> = destinations.keys().map(String::as_str).collect();
                return Err(at.key("deliver").index(i).issue(format!(
                    "no destination `{name}` in [destinations]; destinations: {}",
                    if known.is_empty() { "none (add [destinations.NAME])".to_string() } else { known.join(", ") }
                )));
            }
        }
        if let Some(cron) = &self.cron {
            let fields = cron.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(at.key("cron").issue(format!(
                    "`{cron}` is not a cron expression: 5 fields (minute hour day month weekday), e.g. \"0 9 * * 1-5\""
                )));
            }
        }
        if let Some(tz) = &self.time_zone {
            if self.cron.is_none() {
                return Err(at.key("time_zone").issue("`time_zone` is the cron's: add `cron` or remove it"));
            }
            if tz.parse::<chrono_tz::Tz>().is_err() {
                return Err(at
                    .key("time_zone")
                    .issue(format!("`{tz}` is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)")));
            }
        }
        Ok(())
    }
}

fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Sql => "sql",
        AlertKind::Measure => "measure",
        AlertKind::Freshness => "freshness",
        AlertKind::DataTests => "data_tests",
    }
}

/// `90s`, `30m`, `2h`, `1d`: a whole number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a duration: a whole number and s, m, h or d, e.g. \"2h\"");
    let unit = t.chars().last().ok_or_else(bad)?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = t[..t.len() - 1].trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("`{text}`: a duration of zero would always fire; give e.g. \"2h\""));
    }
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// The `{name}` placeholders of a message template, in order.
pub fn template_names(template: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

/// Braces pair up around column names.
fn check_template(template: &str) -> Result<(), String> {
    let mut depth = 0;
    for c in template.chars() {
        match c {
            '{' if depth == 0 => depth = 1,
            '}' if depth == 1 => depth = 0,
            '{' | '}' => {
                return Err(format!("`{template}`: braces must pair up around a column name, as in {{manager_id}}"));
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("`{template}`: a `{{` is not closed"));
    }
    for name in template_names(template) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{{{name}}}` is not a column name (a-z, 0-9, _)"));
        }
    }
    Ok(())
}

/// Checks every alert and its name.
pub(crate) fn validate_alerts<'a>(
    alerts: &BTreeMap<String, toml::Spanned<Alert>>,
    destinations: &BTreeMap<String, toml::Spanned<Destination>>,
    sources: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), ConfigIssue> {
    for (name, a) in alerts {
        let at = KeyPath::of(["alerts", name.as_str()]);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(at.issue("alert names may use a-z, 0-9, _ and - only"));
        }
        a.get_ref().validate(&at, destinations, sources.clone())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    const BASE: &str = "[sources.crm]\nkind = \"x\"\n\n[destinations.heads]\nkind = \"webhook\"\n\
                        url = \"https://hooks.example.ru/x\"\nsecret_env = \"HOOK_SECRET\"\n\n";

    /// The five rules of issue 12, as the README writes them.
    const FIVE: &str = "[alerts.stalled]\nsql = \"select manager_id, branch_id, count(*) as stalled from mart_stalled_deals group by 1, 2 having count(*) > 5\"\n\
        key = [\"manager_id\"]\nmessage = \"{manager_id} has {stalled} stalled deals\"\ndeliver = [\"heads\"]\n\n\
        [alerts.plan]\nmeasure = \"plan_completion\"\nby = [\"branch\"]\nfilters = { metric = [\"won_amount\"], level = [\"branch\"] }\n\
        below = \"0.5\"\nfrom_day = 20\ndeliver = [\"heads\"]\n\n\
        [alerts.no_answer]\nsql = \"select deal_id, branch_id, manager_id, days_idle from mart_stalled_deals where stage = 'proposal' and days_idle >= 7\"\n\
        key = [\"deal_id\"]\ncron = \"0 9 * * 1-5\"\ntime_zone = \"Asia/Vladivostok\"\n\n\
        [alerts.sync_late]\nkind = \"freshness\"\nmax_age = \"2h\"\n\n\
        [alerts.tests]\nkind = \"data_tests\"\n";

    #[test]
    fn the_five_rules_of_the_issue_parse() {
        let c = parse(&format!("{BASE}{FIVE}")).unwrap();
        let a = |n: &str| c.alerts[n].get_ref().clone();
        assert_eq!(a("stalled").kind(), AlertKind::Sql);
        assert_eq!(a("plan").kind(), AlertKind::Measure);
        assert_eq!(a("plan").key_columns(), vec!["branch".to_string()]);
        assert_eq!(a("plan").threshold(), Some((Comparison::Below, Decimal::new(5, 1))));
        assert_eq!(a("sync_late").max_age(), Some(Duration::from_secs(7200)));
        assert_eq!(a("sync_late").key_columns(), vec!["source".to_string()]);
        assert_eq!(a("tests").key_columns(), vec!["model".to_string(), "test".to_string()]);
        assert_eq!(template_names("{manager_id} has {stalled}"), vec!["manager_id", "stalled"]);
    }

    /// The README's destinations and alerts (the issue's five rules) are what this parser takes.
    #[test]
    fn the_readme_examples_parse() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = readme.split("### Destinations and alerts").nth(1).expect("the README section");
        let section = section.split("\n## ").next().unwrap_or_default();
        let blocks: Vec<&str> = section.split("```toml\n").skip(1).filter_map(|b| b.split("```").next()).collect();
        assert_eq!(blocks.len(), 2, "{section}");
        let c = parse(&format!("[sources.crm]\nkind = \"x\"\n\n{}", blocks.concat())).unwrap();
        assert_eq!(c.destinations.len(), 2);
        let kinds: Vec<AlertKind> = c.alerts.values().map(|a| a.get_ref().kind()).collect();
        assert_eq!(c.alerts.len(), 5);
        for kind in [AlertKind::Sql, AlertKind::Measure, AlertKind::Freshness, AlertKind::DataTests] {
            assert!(kinds.contains(&kind), "{kinds:?}");
        }
    }

    #[test]
    fn mistakes_name_their_line_and_the_fix() {
        let one = |body: &str| parse(&format!("{BASE}[alerts.a]\n{body}\n")).unwrap_err().to_string();
        for (body, line, key, words) in [
            ("sql = \"select 1 as x\"", 9, "alerts.a", "missing field `key`"),
            ("sql = \"select 1 as x\"\nkey = [\"x\"]\ndeliver = [\"nobody\"]", 12, "alerts.a.deliver[0]", "heads"),
            ("measure = \"plan_completion\"\nby = [\"branch\"]", 9, "alerts.a", "threshold"),
            ("measure = \"m\"\nby = [\"branch\"]\nbelow = \"half\"", 12, "alerts.a.below", "decimal"),
            ("measure = \"m\"\nby = [\"branch\"]\nbelow = \"1\"\nfrom_day = 31", 13, "alerts.a.from_day", "1 to 28"),
            (
                "measure = \"m\"\nby = [\"branch\"]\nbelow = \"1\"\nkey = [\"manager\"]",
                13,
                "alerts.a.key",
                "not one of `by`",
            ),
            ("kind = \"freshness\"", 9, "alerts.a", "max_age"),
            ("kind = \"freshness\"\nmax_age = \"2 hours\"", 11, "alerts.a.max_age", "not a duration"),
            ("kind = \"freshness\"\nmax_age = \"2h\"\nsources = [\"cmr\"]", 12, "alerts.a.sources[0]", "crm"),
            ("kind = \"data_tests\"\nsql = \"select 1\"", 11, "alerts.a.sql", "does not apply"),
            ("sql = \"select 1 as x\"\nkey = [\"x\"]\nmessage = \"{x\"", 12, "alerts.a.message", "not closed"),
            ("sql = \"select 1 as x\"\nkey = [\"x\"]\ncron = \"daily\"", 12, "alerts.a.cron", "5 fields"),
            (
                "sql = \"select 1 as x\"\nkey = [\"x\"]\ncron = \"0 9 * * *\"\ntime_zone = \"Mars/Base\"",
                13,
                "alerts.a.time_zone",
                "IANA",
            ),
            ("kind = \"pager\"", 10, "alerts.a.kind", "unknown variant"),
            ("", 9, "alerts.a", "say what the alert watches"),
        ] {
            let e = one(body);
            assert!(e.contains(&format!("dealhouse.toml:{line}: key `{key}`")) && e.contains(words), "{body}\n{e}");
        }
    }
}
