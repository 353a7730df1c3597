//! `kind = "bitrix24"`: a Bitrix24 portal's webhook, stage map and pacing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dealhouse_warehouse::config::{ConfigIssue, KeyPath};
use dealhouse_warehouse::schema::STAGES;
use serde::Deserialize;
use url::Url;

use crate::source_config::{default_chunk_rows, default_lookback, default_max_retry_seconds};

/// `kind = "bitrix24"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bitrix24Config {
    /// Inbound webhook URL, `https://<portal>/rest/<user>/<code>/`. Treat it as a secret: prefer
    /// `webhook_url_env`.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook URL.
    #[serde(default)]
    pub webhook_url_env: Option<String>,
    /// Serve this folder of recorded portal data as a local Bitrix24 portal and pull from it
    /// (demo projects and tests). Relative to the project directory.
    #[serde(default)]
    pub simulate_from: Option<PathBuf>,
    /// Source stage id -> canonical stage (new, contact, proposal, negotiation, contract, won,
    /// lost). Won and lost are decided by the stage semantics, not by this map.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Seconds re-read before the last cursor (upstream timestamps are second-accurate).
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
    /// Share of the agent's commission in the deal amount when the CRM has none.
    #[serde(default)]
    pub commission_rate: Option<rust_decimal::Decimal>,
    /// Give up on a request after retrying throttled or failed calls (HTTP 503
    /// QUERY_LIMIT_EXCEEDED, 429, 5xx, dropped connections) for this many seconds in total. A
    /// refused connection (nothing listening at the address) is not retried.
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
    /// Rows per committed chunk: a crash resumes after the last committed chunk; bigger chunks
    /// mean fewer Delta commits on a large initial load.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    /// ISO 4217 code of the money this source's rows carry when a row names none (a `currency`
    /// column, Bitrix24's CURRENCY_ID); default the reporting currency (`[reporting]`).
    #[serde(default)]
    pub currency: Option<String>,
}

impl Bitrix24Config {
    /// A webhook (or recorded data) to read from, and canonical stages. `at` is `sources.<name>`.
    pub(crate) fn validate(&self, at: &KeyPath) -> Result<(), ConfigIssue> {
        if let Some(url) = &self.webhook_url {
            let key = at.key("webhook_url");
            let parsed = Url::parse(url).map_err(|e| {
                key.issue(format!("not a valid URL ({e}); expected https://<portal>/rest/<user>/<code>/"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || !parsed.path().contains("/rest/") {
                return Err(key.issue("expected an inbound webhook URL like https://<portal>/rest/<user>/<code>/"));
            }
        }
        if self.webhook_url.is_none() && self.webhook_url_env.is_none() && self.simulate_from.is_none() {
            return Err(at.issue("set webhook_url_env (or webhook_url, or simulate_from for recorded data)"));
        }
        for (stage_id, stage) in &self.stages {
            if !STAGES.contains(&stage.as_str()) {
                return Err(at
                    .keys(["stages", stage_id.as_str()])
                    .issue(format!("`{stage}` is not a canonical stage ({})", STAGES.join(", "))));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, Visitor};

    use super::Bitrix24Config;
    use crate::source_config::tests::parse;

    /// The keys serde reads for a struct: `deserialize_struct` is handed the field list, which
    /// this deserializer keeps before refusing to go on.
    struct FieldNames(Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for &mut FieldNames {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    /// The first-column keys of the table under `### Bitrix24 sources` in README.md.
    fn readme_keys() -> BTreeSet<String> {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = readme.split("\n### Bitrix24 sources\n").nth(1).expect("a `### Bitrix24 sources` section");
        let section = section.split("\n##").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(key, _)| key.to_string()))
            .collect()
    }

    #[test]
    fn readme_documents_every_bitrix24_key_and_no_other() {
        let mut fields = FieldNames(vec![]);
        assert!(Bitrix24Config::deserialize(&mut fields).is_err());
        let keys: BTreeSet<String> = fields.0.iter().map(|f| f.to_string()).collect();
        assert!(keys.contains("webhook_url_env") && keys.len() >= 8, "{keys:?}");
        let documented = readme_keys();
        let missing: Vec<_> = keys.difference(&documented).collect();
        assert!(missing.is_empty(), "add to README's Bitrix24 sources table: {missing:?}");
        let stale: Vec<_> = documented.difference(&keys).collect();
        assert!(stale.is_empty(), "README's Bitrix24 sources table names keys the config lacks: {stale:?}");
    }

    #[test]
    fn webhook_and_stages_are_validated_with_line_and_key() {
        let e = parse("[sources.crm]\nkind = \"bitrix24\"\nwebhook_url = \"not a url\"\n").unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.crm.webhook_url"), "{e}");
        let e = parse("[sources.crm]\nkind = \"bitrix24\"\nwebhook_url = \"https://p.bitrix24.ru/x/\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3") && e.contains("inbound webhook URL"), "{e}");
        let e = parse("\n[sources.crm]\nkind = \"bitrix24\"\n").unwrap_err().to_string();
        assert!(e.contains(":2: key `sources.crm`: set webhook_url_env"), "{e}");
        let text = "[sources.crm]\nkind = \"bitrix24\"\nwebhook_url_env = \"B24\"\n[sources.crm.stages]\nNEW = \"new\"\n\
                    \"C1:WON\" = \"done\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(":6: key `sources.crm.stages.C1:WON`") && e.contains("canonical stage"), "{e}");
        let ok = parse(&text.replace("\"done\"", "\"won\"")).unwrap();
        assert_eq!(ok["crm"].kind(), "bitrix24");
    }
}
