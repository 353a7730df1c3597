//! `dealhouse audit intake`: arguments -> [`dealhouse_api::audit::intake`], the files, and a
//! summary of the verdicts on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use dealhouse_api::audit::{self, render};
use dealhouse_warehouse::as_of::TableAt;
use dealhouse_warehouse::datafusion::arrow::array::AsArray;

pub const EXAMPLES: &str = "Examples:
  dealhouse -C /tmp/d audit intake                         JSON on stdout, the current version
  dealhouse -C /tmp/d audit intake --version 12 --out audit.json
  dealhouse -C /tmp/d audit intake --as-of 2026-11-30 --format csv --out audit-2026-11-30/
  dealhouse -C /tmp/d audit intake --format xlsx --out audit.xlsx   a sheet per finding kind

What it reads: intake_requests at the version asked (default: the current one) and branches as
they were when that version was committed; the output records both versions, and the same
--version always gives the same bytes. Matching rules, findings and verdict rules: README,
\"Auditing the intake migration\"; settings: [audit] in dealhouse.toml.";

/// What `dealhouse audit` audits.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// The migration off the legacy intake systems: every legacy request matched to the CRM's,
    /// findings (lost, doubled, changed, late, duplicated requests; volume drops), lead times
    /// before and after, and a verdict per branch.
    #[command(after_help = EXAMPLES)]
    Intake(IntakeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    Json,
    Csv,
    Xlsx,
}

/// The arguments of `dealhouse audit intake`.
#[derive(clap::Args)]
pub struct IntakeArgs {
    /// Read the tables as they were at the end of this UTC day (2026-11-30) or at this instant
    /// (2026-11-30T12:00:00Z). Default: the current version.
    #[arg(long, value_name = "DATE", conflicts_with = "version")]
    pub as_of: Option<String>,
    /// Read intake_requests at this Delta version (`dealhouse status` shows the current one).
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// json: one document; csv: one file per section (branches, findings, matches, volume,
    /// lead_times, rules) and read.csv; xlsx: a workbook with a sheet per finding kind.
    #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
    pub format: AuditFormat,
    /// json: the file (default: stdout); csv: the folder (default: audit-intake/ in the project);
    /// xlsx: the file (default: audit-intake.xlsx in the project).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

pub async fn audit(dir: &Path, command: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Intake(args) = command;
    let asked = match (&args.as_of, args.version) {
        (Some(s), _) => TableAt::Time(parse_as_of(s)?),
        (None, Some(v)) => TableAt::Version(v),
        (None, None) => TableAt::Latest,
    };
    let project = crate::load(dir)?;
    let warehouse = crate::warehouse(&project)?;
    let result = audit::intake(&project, &warehouse, asked, None).await?;
    match args.format {
        AuditFormat::Json => {
            let bytes = render::json(&result).map_err(anyhow::Error::msg)?;
            match &args.out {
                Some(path) => {
                    let path = project.path(path);
                    write(&path, &bytes)?;
                    eprintln!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        AuditFormat::Xlsx => {
            let path = project.path(args.out.as_deref().unwrap_or(Path::new("audit-intake.xlsx")));
            write(&path, &audit::xlsx::xlsx(&result).map_err(anyhow::Error::msg)?)?;
            eprintln!("wrote {}", path.display());
        }
        AuditFormat::Csv => {
            let folder = project.path(args.out.as_deref().unwrap_or(Path::new("audit-intake")));
            std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
            for (name, bytes) in render::csv(&result).map_err(anyhow::Error::msg)? {
                write(&folder.join(name), &bytes)?;
            }
            eprintln!("wrote {}", folder.display());
        }
    }
    eprintln!("{}", summary(&result));
    Ok(ExitCode::SUCCESS)
}

/// A date is the end of that UTC day; anything else must be an RFC 3339 instant.
fn parse_as_of(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let end = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
        return end.map(|t| t - chrono::TimeDelta::microseconds(1)).context("--as-of: the date is out of range");
    }
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(_) => bail!("--as-of `{s}`: write a day (2026-11-30, its end in UTC) or an instant (2026-11-30T12:00:00Z)"),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `read intake_requests v12, branches v3; 5 branches: 2 blocking, 1 findings, 2 clean; 17 findings`.
fn summary(result: &audit::IntakeAudit) -> String {
    let read: Vec<String> = result.read.iter().map(|r| format!("{} v{}", r.table, r.version)).collect();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    if let Some(branches) = result.section("branches")
        && let Ok(i) = branches.schema().index_of("verdict")
        && let Some(verdicts) = branches.column(i).as_string_opt::<i32>()
    {
        for v in verdicts.iter().flatten() {
            *counts.entry(v.to_string()).or_default() += 1;
        }
    }
    let findings = result.section("findings").map_or(0, |f| f.num_rows());
    let verdicts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let branches: usize = counts.values().sum();
    format!(
        "read {}; {branches} switched branches: {}; {findings} findings",
        read.join(", "),
        if verdicts.is_empty() { "none".to_string() } else { verdicts.join(", ") }
    )
}
