//! Quarantined amoCRM records are read again by id once the stage map is fixed, loaded, and
//! their quarantine rows cleared, without listing the account from the start.

use super::*;

/// The ids a list path was asked for with `filter[id][]`, request by request.
pub(in crate::amocrm) fn by_id_requests(sim: &AmoCrmSimulator, path: &str) -> Vec<Vec<String>> {
    sim.queries(path)
        .iter()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "filter[id][]")
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|ids| !ids.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_fixed_stage_map_loads_exactly_the_quarantined_records_by_id() {
    let mut data = account(40, COMPANIES);
    // The account has a new status 99999 in pipeline 1001 that the config does not map yet:
    // lead 7 sits in it, and an event moved it there.
    let statuses = data.pipelines.get_mut(&P1).unwrap()["_embedded"]["statuses"].as_array_mut().unwrap();
    statuses.push(json!({"id": 99999, "name": "Смета", "sort": 35, "is_editable": true, "pipeline_id": P1,
                         "color": "#fffeb2", "type": 0, "account_id": 31_000_001}));
    data.leads.get_mut(&7).unwrap()["status_id"] = json!(99999);
    // Half an hour after lead 7's creation: long before the newest event, outside the look-back.
    let event = event_record("01evx7", 7, (P1, 10101), (P1, 99999), created(7) + 1800, 2);
    data.events.insert("01evx7".into(), event);
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "39");
    let held = query(&wh, "SELECT source_id, record_id, reason FROM quarantine ORDER BY source_id").await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(held[0][..2], ["/api/v4/events:id=01evx7", "01evx7"]);
    assert_eq!(held[1][..2], ["/api/v4/leads:id=7", "7"]);
    assert!(
        held[1][2].contains("status 99999 of pipeline 1001 (\"Смета\"")
            && held[1][2].contains("[sources.amo.stages.1001]")
            && held[1][2].contains("then run `dealhouse sync`"),
        "{}",
        held[1][2]
    );

    // The user maps the new status; the next plain sync asks for exactly those two by id.
    let file = dir.path().join("dealhouse.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("10103 = \"proposal\"", "10103 = \"proposal\"\n99999 = \"negotiation\"");
    std::fs::write(&file, &text).unwrap();
    let project =
        Arc::new(Project { dir: dir.path().to_path_buf(), config: ProjectConfig::parse(&text, &file).unwrap() });
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(by_id_requests(&sim, "/api/v4/leads"), [["7"]]);
    assert_eq!(by_id_requests(&sim, "/api/v4/events"), [["01evx7"]]);
    // The cursor reads went on from their cursors.
    for q in sim.queries("/api/v4/leads").iter().filter(|q| !q.contains("filter%5Bid%5D")) {
        assert!(q.contains("filter%5Bupdated_at%5D%5Bfrom%5D="), "a lead read from the start: {q}");
    }
    let amo = report.sources.iter().find(|s| s.name == "amo").unwrap();
    let deals = amo.tables.iter().find(|t| t.table == "deals").unwrap();
    assert_eq!((deals.replayed, deals.cleared), (1, 1), "{deals:?}");
    assert_eq!(
        query(&wh, "SELECT stage, source_stage FROM deals WHERE source_id = '7'").await,
        [["negotiation", "1001:99999"]]
    );
    assert_eq!(
        query(&wh, "SELECT from_stage, to_stage FROM deal_stage_changes WHERE source_id = '01evx7'").await,
        [["new", "negotiation"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "40");
}
