//! `dealhouse export`: arguments -> [`dealhouse_api::reports::export`], progress and the
//! summary. Without a report it lists the reports.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::ValueEnum;
use dealhouse_api::reports::{
    self, CsvOptions, Destination, ExportProgress, ExportRequest, Filters, Format, Language, Period, Written,
};
use indicatif::ProgressBar;

use crate::progress;

pub const EXAMPLES: &str = "Examples:
  dealhouse -C /tmp/d export                    list the reports
  dealhouse -C /tmp/d export weekly-branch      the last complete week, as XLSX
  dealhouse -C /tmp/d export weekly-branch --period 2026-W47 --per-branch
  dealhouse -C /tmp/d export monthly-holding --period 2026-11 --holding north --format csv
  dealhouse -C /tmp/d export stalled --format csv --csv-bom --csv-semicolon     Excel, ru
  dealhouse -C /tmp/d export daily-managers --period 2026-11-03 --branch msk --format json
  dealhouse -C /tmp/d export stalled --format parquet --out s3://bucket/reports/

Periods: a month (2026-11), an ISO week (2026-W47) or a day (2026-11-03). Without --period, the
last complete period of the report's kind before the data's reference day (the latest deal
update), not today: the same warehouse always exports the same default period.
--out is a folder (default: exports/ in the project) or an s3:// prefix, laid out as
<report>/[<branch>/]<period>.<ext>; a name ending in the format's extension is the file itself.
Writes are atomic: a reader sees the previous file or the new one, never half.
Reports are built in (dealhouse export lists them) or reports/<id>.toml in the project (README,
\"Reports and exports\").";

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Xlsx,
    Csv,
    Parquet,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Lang {
    Ru,
    En,
}

/// The arguments of `dealhouse export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Report id (built in, or reports/<id>.toml in the project); omit to list them.
    pub report: Option<String>,
    /// 2026-11 (month), 2026-W47 (ISO week) or 2026-11-03 (day); default: the last complete
    /// one of the report's kind before the data's reference day.
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
    /// Only this holding (repeat for several).
    #[arg(long, value_name = "ID")]
    pub holding: Vec<String>,
    /// Only this branch (repeat for several).
    #[arg(long, value_name = "ID")]
    pub branch: Vec<String>,
    /// Only this manager (repeat for several; reports that take it).
    #[arg(long, value_name = "ID")]
    pub manager: Vec<String>,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Xlsx)]
    pub format: ExportFormat,
    /// A folder, an s3:// prefix, or a file name ending in the format's extension
    /// (default: exports/ in the project).
    #[arg(long, value_name = "PATH_OR_URL")]
    pub out: Option<String>,
    /// One file per branch, each holding only that branch's rows.
    #[arg(long)]
    pub per_branch: bool,
    /// CSV: start with a UTF-8 byte order mark (for Excel).
    #[arg(long)]
    pub csv_bom: bool,
    /// CSV: `;` between fields and `,` in decimals (Excel in a Russian locale).
    #[arg(long)]
    pub csv_semicolon: bool,
    /// Language of titles and headers.
    #[arg(long, value_enum, default_value_t = Lang::Ru)]
    pub lang: Lang,
}

struct Bar(ProgressBar);

impl ExportProgress for Bar {
    fn planned(&self, files: usize) {
        self.0.set_length(files as u64);
    }

    fn written(&self, file: &Written) {
        self.0.inc(1);
        tracing::info!(file = %file.location, bytes = file.bytes, rows = file.rows, "exported");
    }
}

pub async fn export(dir: &Path, args: ExportArgs) -> Result<ExitCode> {
    let project = crate::load(dir)?;
    let Some(report) = args.report else {
        let all = reports::load_reports(&project.dir)?;
        println!("{:<18} {:<6} description", "report", "period");
        for r in all.values() {
            println!("{:<18} {:<6} {}", r.id, r.period.name(), r.description.en);
        }
        println!("\nExport one: dealhouse -C {} export REPORT [--period ..] (see --help)", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let format = match args.format {
        ExportFormat::Xlsx => Format::Xlsx,
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Parquet => Format::Parquet,
        ExportFormat::Json => Format::Json,
    };
    let period = match &args.period {
        Some(p) => Some(Period::parse(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    if (args.csv_bom || args.csv_semicolon) && format != Format::Csv {
        bail!("--csv-bom and --csv-semicolon apply to --format csv only");
    }
    let out = args.out.unwrap_or_else(|| "exports".to_string());
    let destination =
        Destination::parse(&out, &project.dir, format.extension(), &project.config.warehouse.storage_options)
            .map_err(anyhow::Error::msg)?;
    let request = ExportRequest {
        report,
        period,
        filters: Filters { holding: args.holding, branch: args.branch, manager: args.manager },
        format,
        destination,
        per_branch: args.per_branch,
        language: match args.lang {
            Lang::Ru => Language::Ru,
            Lang::En => Language::En,
        },
        csv: CsvOptions { bom: args.csv_bom, semicolon: args.csv_semicolon },
    };
    let bar = Bar(progress::counter(1, "export"));
    let warehouse = crate::warehouse(&project)?;
    let outcome = reports::export(&project, &warehouse, &request, &bar).await?;
    bar.0.finish_and_clear();
    let how = if outcome.period_is_default {
        format!(
            "the last complete {} before the data's reference day {}",
            outcome.period.kind.name(),
            outcome.reference_date.map(|d| d.to_string()).unwrap_or_default()
        )
    } else {
        "as given".to_string()
    };
    eprintln!("export {} for {} ({how})", outcome.report, outcome.period);
    for f in &outcome.files {
        eprintln!("wrote {}  ({} rows, {} bytes)", f.location, f.rows, f.bytes);
    }
    Ok(ExitCode::SUCCESS)
}
