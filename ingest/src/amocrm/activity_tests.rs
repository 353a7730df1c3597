//! amoCRM activities: tasks and call notes through the simulator into `activities`, and on to
//! `mart_manager_daily`. The fixture records, beside each upstream record, what it means in
//! canonical terms (who, what, when, done); expected values come from that list and the
//! fixture's formulas (worked out in the comments), never from the connector's output.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use dealhouse_warehouse::Warehouse;
use dealhouse_warehouse::models;
use serde_json::{Value, json};

use super::tests::replay::by_id_requests;
use super::tests::{
    BASE, COMPANIES, TOKEN, account, amo_error, branch_of_user, counts, created, one, project, query, sync, user_of,
    warehouse,
};
use crate::simulators::amocrm::{AmoCrmSimulator, AmoCrmSimulatorData, FailurePlan};
use crate::sync::{LogProgress, SyncOptions, sync_project};

const DAY: i64 = 86_400;
/// An account task type the project maps to nothing: it stays `task`.
const OWN_TASK_TYPE: i64 = 2_811_130;

/// A done-or-not call or meeting of a manager, as the fixture means it.
#[derive(Debug, Clone, Copy)]
struct Touch {
    user: i64,
    kind: &'static str,
    at: i64,
    done: bool,
}

fn task(
    id: i64,
    type_id: i64,
    done: bool,
    (entity_type, entity_id): (&str, i64),
    user: i64,
    due: i64,
    updated: i64,
) -> Value {
    json!({
        "id": id, "created_by": user, "updated_by": user, "created_at": due - 3 * DAY, "updated_at": updated,
        "responsible_user_id": user, "group_id": 0, "entity_id": entity_id, "entity_type": entity_type,
        "is_completed": done, "task_type_id": type_id, "text": format!("Задача {id}"), "duration": 0,
        "complete_till": due, "result": if done { json!({"text": "Сделано"}) } else { json!([]) },
        "account_id": 31_000_001,
    })
}

fn call_note(id: i64, entity_id: i64, incoming: bool, status: i64, user: i64, at: i64) -> Value {
    json!({
        "id": id, "entity_id": entity_id, "created_by": 0, "updated_by": 0, "created_at": at, "updated_at": at,
        "responsible_user_id": user, "group_id": 0, "note_type": if incoming { "call_in" } else { "call_out" },
        "params": {"uniq": format!("call-{id}"), "duration": 95, "source": "onlinePBX",
                   "link": format!("https://pbx.example/rec/{id}.mp3"), "phone": "+74951234567",
                   "call_result": "", "call_status": status},
        "account_id": 31_000_001,
    })
}

/// Adds tasks and notes for leads 1..=`leads` and companies 1..=`companies`:
///
/// - lead i, its manager user_of(i): task 3i-2 a call (type 1) due created(i) + 1 day, done when
///   i is even; task 3i-1 a meeting (type 2) due created(i) + 2 days, done unless i % 3 == 0;
///   task 3i of the account's own type, never done; all three updated at BASE + 10i + 1. Note
///   10000+i a call at created(i) + 30 min, incoming when i is odd, not reached (status 6) when
///   i % 5 == 0, else a conversation (4). Every 50th lead also has a text note (`common`).
/// - every 10th lead's contact 5000+i: note 30000+i, an incoming call at created(i) + 1 hour.
/// - company c, its manager user_of(c): task 100000+c a done meeting due BASE - 40000 + 100c;
///   note 20000+c an outgoing call at BASE - 30000 + 60c.
fn with_activities(d: &mut AmoCrmSimulatorData, leads: i64, companies: i64) -> Vec<Touch> {
    let mut touches = vec![];
    for i in 1..=leads {
        let (u, c) = (user_of(i), created(i));
        let updated = BASE + 10 * i + 1;
        for (id, type_id, done, due, kind) in [
            (3 * i - 2, 1, i % 2 == 0, c + DAY, "call"),
            (3 * i - 1, 2, i % 3 != 0, c + 2 * DAY, "meeting"),
            (3 * i, OWN_TASK_TYPE, false, c + 3 * DAY, "task"),
        ] {
            d.tasks.insert(id, task(id, type_id, done, ("leads", i), u, due, updated));
            touches.push(Touch { user: u, kind, at: due, done });
        }
        let done = i % 5 != 0;
        d.lead_notes.insert(10_000 + i, call_note(10_000 + i, i, i % 2 == 1, if done { 4 } else { 6 }, u, c + 1800));
        touches.push(Touch { user: u, kind: "call", at: c + 1800, done });
        if i % 50 == 0 {
            d.lead_notes.insert(
                40_000 + i,
                json!({"id": 40_000 + i, "entity_id": i, "note_type": "common", "created_at": c, "updated_at": c,
                       "responsible_user_id": u, "created_by": u, "params": {"text": "Клиент просил перезвонить"}}),
            );
        }
        if i % 10 == 0 {
            d.contact_notes.insert(30_000 + i, call_note(30_000 + i, 5000 + i, true, 4, u, c + 3600));
            touches.push(Touch { user: u, kind: "call", at: c + 3600, done: true });
        }
    }
    for c in 1..=companies {
        let (u, due, at) = (user_of(c), BASE - 40_000 + 100 * c, BASE - 30_000 + 60 * c);
        d.tasks.insert(100_000 + c, task(100_000 + c, 2, true, ("companies", c), u, due, due));
        touches.push(Touch { user: u, kind: "meeting", at: due, done: true });
        d.company_notes.insert(20_000 + c, call_note(20_000 + c, c, false, 4, u, at));
        touches.push(Touch { user: u, kind: "call", at, done: true });
    }
    touches
}

/// Builds the models `mart_manager_daily` needs (and the mart its data test compares with), then
/// runs the data tests of `stg_activity` and the mart.
async fn build_manager_daily(wh: &Warehouse) {
    let all = models::load_models(None).unwrap();
    let mut chosen: BTreeSet<String> = ["mart_manager_daily", "mart_win_rate_monthly"].map(String::from).into();
    loop {
        let more: Vec<String> = chosen
            .iter()
            .flat_map(|m| all[m].depends_on.iter())
            .filter(|d| all.contains_key(*d) && !chosen.contains(*d))
            .cloned()
            .collect();
        if more.is_empty() {
            break;
        }
        chosen.extend(more);
    }
    let runs = models::run(wh, &all, Some(&chosen), |_| {}).await.unwrap();
    let failed: Vec<String> =
        runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let tested: BTreeSet<String> = ["stg_activity", "mart_manager_daily"].map(String::from).into();
    let tests = models::run_tests(wh, &all, Some(&tested), &Default::default()).await.unwrap();
    let failing: Vec<String> = tests
        .iter()
        .filter(|t| t.result != Ok(0))
        .map(|t| format!("{}: {}: {:?}", t.model, t.test, t.result))
        .collect();
    assert!(!tests.is_empty() && failing.is_empty(), "{failing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_tasks_and_calls_become_activities_and_count_in_manager_days() {
    let mut data = account(600, COMPANIES);
    let touches = with_activities(&mut data, 600, COMPANIES);
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");

    // 1850 tasks (3 x 600 + 50) in pages of 250: 7 full and one of 100. 600 call notes of leads
    // (the 12 text notes are not asked for): 3 pages; 60 of contacts and 50 of companies: 1 each.
    assert_eq!(sim.served("/api/v4/tasks"), 8);
    assert_eq!(sim.served("/api/v4/leads/notes"), 3);
    assert_eq!((sim.served("/api/v4/contacts/notes"), sim.served("/api/v4/companies/notes")), (1, 1));
    let first = &sim.queries("/api/v4/tasks")[0];
    for part in ["limit=250", "order%5Bid%5D=asc", "page=1"] {
        assert!(first.contains(part), "{first}");
    }
    assert!(!first.contains("filter"), "a first sync reads everything: {first}");
    let notes = &sim.queries("/api/v4/leads/notes")[0];
    for part in ["filter%5Bnote_type%5D%5B%5D=call_in", "filter%5Bnote_type%5D%5B%5D=call_out", "limit=250"] {
        assert!(notes.contains(part), "{notes}");
    }
    assert_eq!(counts(&report, "activities"), (2560, 2560, 0));
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");

    // Calls: 600 call tasks + 600 + 60 + 50 notes = 1310; done: 300 even tasks, 480 notes of
    // leads (120 not reached), 60 + 50. Meetings: 600 + 50; done: 400 (i % 3 != 0) + 50.
    // Tasks of the account's own type: 600, none done.
    assert_eq!(
        query(&wh, "SELECT activity_type, count(*), sum(CASE WHEN done THEN 1 ELSE 0 END) FROM activities GROUP BY 1 ORDER BY 1").await,
        [["call", "1310", "890"], ["meeting", "650", "450"], ["task", "600", "0"]]
    );
    // Incoming: 300 odd leads' notes + 60 contacts'; outgoing: 300 + 50 companies'.
    assert_eq!(
        query(&wh, "SELECT coalesce(direction, '-'), count(*) FROM activities GROUP BY 1 ORDER BY 1").await,
        [["-", "1850"], ["incoming", "360"], ["outgoing", "350"]]
    );
    // Linked to deals: 1800 tasks + 600 notes of leads; to clients: 50 + 50; contacts' 60: none.
    assert_eq!(
        query(
            &wh,
            "SELECT count(deal_id), count(client_id), sum(CASE WHEN deal_id IS NULL AND client_id IS NULL THEN 1 ELSE 0 END) FROM activities"
        )
        .await,
        [["2400", "100", "60"]]
    );
    // Lead 7 (user 4): call task 19 planned (7 is odd), meeting 20 done (7 % 3 != 0), task 21;
    // note 10007 an incoming conversation.
    let c7 = created(7);
    let [call_at, task_at, meeting_at, own_at] =
        [c7 + 1800, c7 + DAY, c7 + 2 * DAY, c7 + 3 * DAY].map(|t| t.to_string());
    let (call_at, task_at, meeting_at, own_at) =
        (call_at.as_str(), task_at.as_str(), meeting_at.as_str(), own_at.as_str());
    assert_eq!(
        query(
            &wh,
            "SELECT activity_id, activity_type, deal_id, manager_id, coalesce(direction, '-'), to_unixtime(at), \
             coalesce(CAST(to_unixtime(due_at) AS VARCHAR), '-'), done, coalesce(result, '-') FROM activities \
             WHERE deal_id = 'amo:7' ORDER BY activity_id"
        )
        .await,
        [
            ["amo:note:leads:10007", "call", "amo:7", "amo:4", "incoming", call_at, "-", "true", "conversation held"],
            ["amo:task:19", "call", "amo:7", "amo:4", "-", task_at, task_at, "false", "-"],
            ["amo:task:20", "meeting", "amo:7", "amo:4", "-", meeting_at, meeting_at, "true", "Сделано"],
            ["amo:task:21", "task", "amo:7", "amo:4", "-", own_at, own_at, "false", "-"],
        ]
    );
    assert_eq!(
        query(&wh, "SELECT done, result FROM activities WHERE source_id = 'note:leads:10010'").await,
        [["false", "not reached"]],
        "lead 10's call did not connect"
    );
    // The newest change is lead 600's tasks, updated at BASE + 6001.
    assert_eq!(wh.last_cursor("activities", "amo").await.unwrap().as_deref(), Some("2023-11-14T23:53:21Z"));

    // Manager days: each done call and meeting on its manager's day in the branch's zone (msk and
    // spb are UTC+3; user 4 has no branch, so UTC).
    build_manager_daily(&wh).await;
    let mut expected: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    for t in touches.iter().filter(|t| t.done && t.kind != "task") {
        let offset = if t.user == 4 { 0 } else { 3 * 3600 };
        let day = DateTime::from_timestamp(t.at + offset, 0).unwrap().date_naive().to_string();
        let e = expected.entry((format!("amo:{}", t.user), branch_of_user(t.user).to_string(), day)).or_default();
        if t.kind == "call" { e.0 += 1 } else { e.1 += 1 }
    }
    let expected: Vec<Vec<String>> = expected
        .into_iter()
        .map(|((m, b, d), (calls, meetings))| vec![m, b, d, calls.to_string(), meetings.to_string()])
        .collect();
    assert_eq!(expected.iter().map(|r| r[3].parse::<i64>().unwrap()).sum::<i64>(), 890);
    let mart = query(
        &wh,
        "SELECT manager_id, coalesce(branch_id, 'NULL'), CAST(local_date AS VARCHAR), calls, meetings FROM mart_manager_daily \
         WHERE calls > 0 OR meetings > 0 ORDER BY 1, 2, 3",
    )
    .await;
    assert_eq!(mart, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_task_completed_later_replaces_its_planned_row() {
    let mut data = account(600, COMPANIES);
    with_activities(&mut data, 600, COMPANIES);
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "lookback_seconds = 300", "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT done FROM activities WHERE source_id = 'task:19'").await, "false");

    // Lead 7's call task is done a week later.
    sim.edit(|d| {
        assert!(d.update_task(19, BASE + 7000, |t| {
            t.insert("is_completed".into(), json!(true));
            t.insert("result".into(), json!({"text": "Дозвонились, ждёт КП"}));
        }));
    });
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    // From the cursor (BASE + 6001) minus 300 s: the tasks of leads 570..=600 (updated at
    // BASE + 10i + 1 >= BASE + 5701), 93, and task 19; no note is that recent.
    assert_eq!(counts(&report, "activities"), (94, 0, 1));
    for path in ["/api/v4/tasks", "/api/v4/leads/notes", "/api/v4/contacts/notes", "/api/v4/companies/notes"] {
        let q = sim.queries(path);
        assert!(q[0].contains(&format!("filter%5Bupdated_at%5D%5Bfrom%5D={}", BASE + 5701)), "{path}: {q:?}");
    }
    assert_eq!(
        query(&wh, "SELECT activity_type, done, result FROM activities WHERE source_id = 'task:19'").await,
        [["call", "true", "Дозвонились, ждёт КП"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM activities").await, "2560");
    assert_eq!(one(&wh, "SELECT count(*) FROM activities WHERE activity_type = 'call' AND done").await, "891");
    assert_eq!(
        wh.last_cursor("activities", "amo").await.unwrap().as_deref(),
        Some("2023-11-15T00:10:00Z"),
        "BASE + 7000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_activities_cursor_moves_only_after_the_last_list() {
    let mut data = account(600, COMPANIES);
    with_activities(&mut data, 600, COMPANIES);
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    sim.set_rate_limit(false);
    // The first page of lead notes is served, then every request for them is throttled.
    sim.fail(FailurePlan { path: "/api/v4/leads/notes".into(), status: 429, pass: 1, times: None, retry_after: None });
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "max_retry_seconds = 2\nchunk_rows = 250", "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    let error = amo_error(&report).expect("the sync must fail");
    assert!(error.contains("/api/v4/leads/notes?") && error.contains("page=2"), "{error}");
    // Chunks of 250 committed: every task (1850) and the first page of lead notes; no cursor.
    assert_eq!(
        query(&wh, "SELECT count(*), sum(CASE WHEN source_id LIKE 'task:%' THEN 1 ELSE 0 END) FROM activities").await,
        [["2100", "1850"]]
    );
    assert_eq!(wh.last_cursor("activities", "amo").await.unwrap(), None);

    sim.clear_failures();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(counts(&report, "activities"), (2560, 460, 0), "read again from the start");
    assert_eq!(wh.last_cursor("activities", "amo").await.unwrap().as_deref(), Some("2023-11-14T23:53:21Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_activities_from_empty_lists_and_recorded_files() {
    // No tasks and no notes of leads or contacts (those lists answer 204): the companies' notes
    // alone set the cursor, at the newest, BASE - 30000 + 60 * 3.
    let mut data = account(5, 3);
    let mut notes_only = AmoCrmSimulatorData::default();
    with_activities(&mut notes_only, 0, 3);
    data.company_notes = notes_only.company_notes;
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let notes_project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&notes_project);
    let report = sync(&notes_project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(counts(&report, "activities"), (3, 3, 0));
    assert_eq!((sim.requests("/api/v4/tasks"), sim.served("/api/v4/tasks")), (1, 1), "one 204");
    assert_eq!(wh.last_cursor("activities", "amo").await.unwrap().as_deref(), Some("2023-11-14T13:56:20Z"));
    // Nothing at all: the cursor stays unset.
    sim.edit(|d| d.company_notes.clear());
    let dir2 = tempfile::tempdir().unwrap();
    let empty_project = project(dir2.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh2 = warehouse(&empty_project);
    assert!(sync(&empty_project, &wh2).await.ok());
    assert_eq!(
        (one(&wh2, "SELECT count(*) FROM activities").await, wh2.last_cursor("activities", "amo").await.unwrap()),
        ("0".into(), None)
    );

    // A recorded folder serves tasks.jsonl and <entity>_notes.jsonl the same way.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("account");
    std::fs::create_dir(&folder).unwrap();
    let mut data = account(20, 2);
    with_activities(&mut data, 20, 2);
    let lines = |records: &BTreeMap<i64, Value>| records.values().map(|r| format!("{r}\n")).collect::<String>();
    for (name, records) in [
        ("leads", &data.leads),
        ("users", &data.users),
        ("pipelines", &data.pipelines),
        ("companies", &data.companies),
        ("tasks", &data.tasks),
        ("leads_notes", &data.lead_notes),
        ("contacts_notes", &data.contact_notes),
        ("companies_notes", &data.company_notes),
    ] {
        std::fs::write(folder.join(format!("{name}.jsonl")), lines(records)).unwrap();
    }
    let recorded = project(dir.path(), None, TOKEN, "", "");
    let wh = warehouse(&recorded);
    let report = sync(&recorded, &wh).await;
    assert!(report.ok(), "{report:?}");
    // 3 x 20 + 2 tasks, 20 + 2 (contacts of leads 10, 20) + 2 call notes.
    assert_eq!(one(&wh, "SELECT count(*) FROM activities").await, "86");
}

/// A task quarantined by the activities stream is read again by id from the list it came from
/// (`/api/v4/tasks?filter[id][]=`), loaded once fixed upstream, and its quarantine row cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_quarantined_task_is_read_again_by_id() {
    let mut data = account(40, COMPANIES);
    with_activities(&mut data, 40, COMPANIES);
    // Task 19 (lead 7's call) with a completion flag that is no boolean.
    data.tasks.get_mut(&19).unwrap()["is_completed"] = json!("yes");
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    sync(&project, &wh).await;
    assert_eq!(query(&wh, "SELECT source_id, record_id FROM quarantine").await, [["/api/v4/tasks:id=19", "19"]]);
    assert_eq!(one(&wh, "SELECT count(*) FROM activities WHERE source_id = 'task:19'").await, "0");

    // Fixed upstream without a change of updated_at: only a replay reads it again.
    sim.edit(|d| d.tasks.get_mut(&19).unwrap()["is_completed"] = json!(true));
    sim.reset_counts();
    let options = SyncOptions { replay_quarantine: true, ..Default::default() };
    let report = sync_project(project.clone(), &wh, &options, &LogProgress).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(by_id_requests(&sim, "/api/v4/tasks"), [["19"]]);
    let amo = report.sources.iter().find(|s| s.name == "amo").unwrap();
    let activities = amo.tables.iter().find(|t| t.table == "activities").unwrap();
    assert_eq!((activities.replayed, activities.cleared), (1, 1), "{activities:?}");
    assert_eq!(
        query(&wh, "SELECT activity_type, done FROM activities WHERE source_id = 'task:19'").await,
        [["call", "true"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
}

#[test]
fn a_held_activity_s_key_names_its_list() {
    use super::activities::list_path_of;
    assert_eq!(list_path_of("/api/v4/tasks:id=19"), Some("/api/v4/tasks"));
    assert_eq!(list_path_of("/api/v4/leads/notes:id=10007"), Some("/api/v4/leads/notes"));
    assert_eq!(list_path_of("/api/v4/contacts/notes:id=30010"), Some("/api/v4/contacts/notes"));
    assert_eq!(list_path_of("/api/v4/companies/notes:id=20001"), Some("/api/v4/companies/notes"));
    // A lead's key is no activity list's.
    assert_eq!(list_path_of("/api/v4/leads:id=7"), None);
}
