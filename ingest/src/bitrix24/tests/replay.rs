//! Quarantined Bitrix24 records are read again by ID once the mapping is fixed (or on
//! `--replay-quarantine`), loaded, and their quarantine rows cleared; the cursor read is not
//! started over.

use super::*;

/// Rewrites the project's stage map with `stage` added (mapped to `negotiation`).
fn add_stage(project: &Project, stage: &str) -> Arc<Project> {
    let file = project.dir.join("dealhouse.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let needle = "FINAL_INVOICE = \"contract\" }";
    assert!(text.contains(needle));
    let text = text.replace(needle, &format!("FINAL_INVOICE = \"contract\", \"{stage}\" = \"negotiation\" }}"));
    std::fs::write(&file, &text).unwrap();
    Arc::new(Project { dir: project.dir.clone(), config: ProjectConfig::parse(&text, &file).unwrap() })
}

fn crm_table<'a>(report: &'a SyncReport, table: &str) -> &'a crate::sync::TableReport {
    let crm = report.sources.iter().find(|s| s.name == "crm").unwrap();
    crm.tables.iter().find(|t| t.table == table).unwrap()
}

/// The deal-list requests that asked for records by ID, as the IDs they named.
fn by_id_requests(sim: &Bitrix24Simulator, method: &str, field: &str) -> Vec<Vec<String>> {
    let prefix = format!("filter[{field}][]=");
    sim.queries(method)
        .iter()
        .filter(|q| q.contains(&prefix))
        .map(|q| q.split('&').filter_map(|p| p.strip_prefix(&prefix)).map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_fixed_stage_map_loads_exactly_the_quarantined_records_by_id() {
    let mut data = fixture(40);
    // Deal 7 sits in a stage of pipeline 3 the config does not map; deal 9 passed through it.
    assert!(data.update("crm.deal.list", 7, |r| {
        r.insert("CATEGORY_ID".into(), json!("3"));
        r.insert("STAGE_ID".into(), json!("C3:UC_X1"));
    }));
    let next = data.ids("crm.stagehistory.list").last().copied().unwrap() + 1;
    let moved = |id: i64, deal: i64, at: i64| {
        json!({"ID": id.to_string(), "TYPE_ID": "2", "OWNER_ID": deal.to_string(), "CREATED_TIME": msk(at),
               "CATEGORY_ID": "3", "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "C3:UC_X1"})
    };
    data.upsert("crm.stagehistory.list", moved(next, 7, deal_created(7) + 1800)).unwrap();
    // Between deal 9's NEW (created + 0 h) and PREPARATION (created + 1 h).
    data.upsert("crm.stagehistory.list", moved(next + 1, 9, deal_created(9) + 1800)).unwrap();
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);

    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "39");
    let held = query(&wh, "SELECT entity, source_id, record_id, reason FROM quarantine ORDER BY source_id").await;
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(held[0][..3], ["deals", "crm.deal.list:ID=7", "7"]);
    assert_eq!(
        held[1][..3],
        ["deal_stage_changes".into(), format!("crm.stagehistory.list:ID={next}"), next.to_string()]
    );
    let reason = &held[0][3];
    assert!(
        reason.contains("`C3:UC_X1` is not mapped")
            && reason.contains("[sources.crm.stages]")
            && reason.contains("then run `dealhouse sync`"),
        "{reason}"
    );
    // Deal 9's move to PREPARATION came after the quarantined record: no from-stage known.
    let chain = "SELECT from_stage, to_stage FROM deal_stage_changes WHERE deal_id = 'crm:9' ORDER BY changed_at";
    assert_eq!(query(&wh, chain).await, [["NULL", "new"], ["NULL", "contact"], ["contact", "proposal"]]);

    // Without a change, a sync leaves them quarantined and asks for nothing by ID.
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(crm_table(&report, "deals").replayed, 0);
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "3");
    assert!(by_id_requests(&sim, "crm.deal.list", "@ID").is_empty());

    // The user maps the stage: the next plain sync reads exactly those records again.
    let project = add_stage(&project, "C3:UC_X1");
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(by_id_requests(&sim, "crm.deal.list", "@ID"), [["7"]]);
    assert_eq!(by_id_requests(&sim, "crm.stagehistory.list", "@OWNER_ID"), [["7", "9"]]);
    // The cursor read went on from its cursor: every other deal-list request is incremental.
    for q in sim.queries("crm.deal.list").iter().filter(|q| !q.contains("filter[@ID]")) {
        assert!(q.contains("DATE_MODIFY]="), "a deal read without the cursor: {q}");
    }
    let deals = crm_table(&report, "deals");
    assert_eq!((deals.replayed, deals.cleared, deals.inserted), (1, 1, 1), "{deals:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "40");
    assert_eq!(
        query(&wh, "SELECT stage, source_stage, pipeline, status FROM deals WHERE source_id = '7'").await,
        [["negotiation", "C3:UC_X1", "3", "open"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    // Deal 9's chain is whole again: the move after the replayed record has its from-stage.
    assert_eq!(
        query(&wh, chain).await,
        [["NULL", "new"], ["new", "negotiation"], ["negotiation", "contact"], ["contact", "proposal"]]
    );
    assert_eq!(
        query(&wh, "SELECT count(*) FROM deals GROUP BY source_system, source_id HAVING count(*) > 1").await.len(),
        0
    );

    // Nothing is left to replay.
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert_eq!(crm_table(&report, "deals").replayed, 0);
    assert!(by_id_requests(&sim, "crm.deal.list", "@ID").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_replay_quarantine_rereads_records_fixed_upstream_unseen_by_the_cursor() {
    let mut data = fixture(40);
    assert!(data.update("crm.deal.list", 8, |r| {
        r.insert("OPPORTUNITY".into(), json!("abc"));
    }));
    assert!(data.update("crm.deal.list", 11, |r| {
        r.insert("CURRENCY_ID".into(), json!("rub"));
    }));
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "2");

    // Fixed in the portal's database without touching DATE_MODIFY: the cursor never sees it.
    sim.edit(|d| {
        assert!(d.update("crm.deal.list", 8, |r| {
            r.insert("OPPORTUNITY".into(), json!("1008.08"));
        }))
    });
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "2");

    sim.reset_counts();
    let replay = SyncOptions { replay_quarantine: true, ..Default::default() };
    let report = sync_project(project.clone(), &wh, &replay, &LogProgress).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(by_id_requests(&sim, "crm.deal.list", "@ID"), [["8", "11"]]);
    let deals = crm_table(&report, "deals");
    assert_eq!((deals.replayed, deals.cleared), (2, 1), "{deals:?}");
    assert_eq!(one(&wh, "SELECT CAST(amount AS VARCHAR) FROM deals WHERE source_id = '8'").await, "1008.08");
    // Deal 11 still does not map: it stays, with the reason as it is now.
    let held = query(&wh, "SELECT source_id, reason, mapping IS NOT NULL FROM quarantine").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0][0], "crm.deal.list:ID=11");
    assert!(held[0][1].contains("CURRENCY_ID: `rub` is not an ISO 4217"), "{}", held[0][1]);
    assert_eq!(held[0][2], "true", "replayed rows carry the current mapping again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_record_fixed_upstream_and_read_by_the_cursor_clears_its_quarantine_row() {
    let mut data = fixture(40);
    assert!(data.update("crm.deal.list", 8, |r| {
        r.insert("OPPORTUNITY".into(), json!("abc"));
    }));
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "1");
    sim.edit(|d| {
        assert!(d.update("crm.deal.list", 8, |r| {
            r.insert("OPPORTUNITY".into(), json!("1008.08"));
        }));
        assert!(d.touch("crm.deal.list", 8, "DATE_MODIFY", Utc::now()));
    });
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(crm_table(&report, "deals").cleared, 1);
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "40");
}
