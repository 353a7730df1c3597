//! The life story of one deal: the stages it goes through, when, why it is lost, and the calls,
//! meetings, e-mails, proposals and tasks around it, all inside the branch's office hours.
//!
//! The funnel follows the field notes: six stages, some skipped, a few lost deals reopened, and
//! about a third of the deals reaching "proposal sent" stalling there with no follow-up at all
//! until someone closes them as "Нет ответа на КП".

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::calendar::{Calendar, moscow_date};

/// A deal stage of the portal's default pipeline (category 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// New request.
    New,
    /// Contact / meeting.
    Preparation,
    /// Proposal sent.
    Proposal,
    /// Contract negotiation.
    Executing,
    /// Contract signed.
    FinalInvoice,
    /// Event on sale (success).
    Won,
    /// Lost (failure).
    Lose,
    /// Lost for want of an answer to the proposal (a second failure stage).
    LostNoAnswer,
}

impl Stage {
    /// Every stage in the portal's display order.
    pub const ALL: [Stage; 8] = [
        Stage::New,
        Stage::Preparation,
        Stage::Proposal,
        Stage::Executing,
        Stage::FinalInvoice,
        Stage::Won,
        Stage::Lose,
        Stage::LostNoAnswer,
    ];

    /// STATUS_ID in the portal.
    pub fn status_id(self) -> &'static str {
        match self {
            Stage::New => "NEW",
            Stage::Preparation => "PREPARATION",
            Stage::Proposal => "UC_PROPOSAL",
            Stage::Executing => "EXECUTING",
            Stage::FinalInvoice => "FINAL_INVOICE",
            Stage::Won => "WON",
            Stage::Lose => "LOSE",
            Stage::LostNoAnswer => "UC_LOST_NO_ANSWER",
        }
    }

    /// Name shown on the kanban.
    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "Новая заявка",
            Stage::Preparation => "Контакт / встреча",
            Stage::Proposal => "КП отправлено",
            Stage::Executing => "Согласование договора",
            Stage::FinalInvoice => "Договор подписан",
            Stage::Won => "Мероприятие в продаже",
            Stage::Lose => "Сделка провалена",
            Stage::LostNoAnswer => "Нет ответа",
        }
    }

    /// SORT in the stage directory.
    pub fn sort(self) -> u32 {
        match self {
            Stage::New => 10,
            Stage::Preparation => 20,
            Stage::Proposal => 30,
            Stage::Executing => 40,
            Stage::FinalInvoice => 50,
            Stage::Won => 60,
            Stage::Lose => 70,
            Stage::LostNoAnswer => 80,
        }
    }

    /// SEMANTICS in the stage directory: "" in progress, "S" success, "F" failure.
    pub fn semantics(self) -> &'static str {
        match self {
            Stage::Won => "S",
            Stage::Lose | Stage::LostNoAnswer => "F",
            _ => "",
        }
    }

    /// STAGE_SEMANTIC_ID on deals and stage history: P, S or F.
    pub fn semantic_id(self) -> &'static str {
        match self.semantics() {
            "" => "P",
            s => s,
        }
    }

    /// Whether the deal is closed in this stage.
    pub fn is_final(self) -> bool {
        !self.semantics().is_empty()
    }

    /// The canonical stage dealhouse maps it to.
    pub fn canonical(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Preparation => "contact",
            Stage::Proposal => "proposal",
            Stage::Executing => "negotiation",
            Stage::FinalInvoice => "contract",
            Stage::Won => "won",
            Stage::Lose | Stage::LostNoAnswer => "lost",
        }
    }
}

/// Lost reason of a stalled proposal.
pub(crate) const NO_ANSWER_REASON: &str = "Нет ответа на КП";
const COMPETITOR: &str = "Выбрали конкурента";
const CANCELLED: &str = "Мероприятие отменено";
const COMMISSION: &str = "Не устроила комиссия";
const BUDGET: &str = "Нет бюджета";

/// Kinds of CRM activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityKind {
    Meeting,
    Call,
    Task,
    Email,
    /// A proposal sent (custom type 6, provider type PROPOSAL_SENT).
    Proposal,
}

impl ActivityKind {
    /// TYPE_ID.
    pub fn type_id(self) -> &'static str {
        match self {
            ActivityKind::Meeting => "1",
            ActivityKind::Call => "2",
            ActivityKind::Task => "3",
            ActivityKind::Email => "4",
            ActivityKind::Proposal => "6",
        }
    }

    /// PROVIDER_ID.
    pub fn provider_id(self) -> &'static str {
        match self {
            ActivityKind::Meeting => "CRM_MEETING",
            ActivityKind::Call => "VOXIMPLANT_CALL",
            ActivityKind::Task => "CRM_TODO",
            ActivityKind::Email => "CRM_EMAIL",
            ActivityKind::Proposal => "REST_APP",
        }
    }

    /// PROVIDER_TYPE_ID.
    pub fn provider_type_id(self) -> &'static str {
        match self {
            ActivityKind::Meeting => "MEETING",
            ActivityKind::Call => "CALL",
            ActivityKind::Task => "TODO",
            ActivityKind::Email => "EMAIL",
            ActivityKind::Proposal => "PROPOSAL_SENT",
        }
    }
}

/// DIRECTION: not applicable, incoming, outgoing.
pub(crate) const NO_DIRECTION: &str = "0";
pub(crate) const INCOMING: &str = "1";
pub(crate) const OUTGOING: &str = "2";

/// An activity of the story, before ids and the responsible manager are known.
#[derive(Debug, Clone)]
pub(crate) struct StoryActivity {
    pub kind: ActivityKind,
    pub direction: &'static str,
    pub subject: &'static str,
    pub created: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub completed: bool,
    pub updated: DateTime<Utc>,
}

/// What one deal lived through up to the cutoff.
#[derive(Debug, Clone)]
pub(crate) struct Story {
    /// Stages entered, the first being the creation in NEW; strictly increasing times.
    pub changes: Vec<(Stage, DateTime<Utc>)>,
    pub activities: Vec<StoryActivity>,
    /// "" unless the deal ends lost.
    pub lost_reason: &'static str,
    /// CLOSEDATE: the planned close date, usually corrected to the real one when closed.
    pub close_date: NaiveDate,
}

impl Story {
    /// The stage the deal is in at the cutoff.
    pub fn stage(&self) -> Stage {
        self.changes.last().map(|c| c.0).unwrap_or(Stage::New)
    }

    /// When the deal last moved.
    pub fn last_move(&self) -> Option<DateTime<Utc>> {
        self.changes.last().map(|c| c.1)
    }
}

/// Where and when the story happens.
pub(crate) struct Setting<'a> {
    pub calendar: &'a Calendar,
    pub branch: usize,
    pub created: DateTime<Utc>,
    pub cutoff: DateTime<Utc>,
    /// The client phoned in (otherwise the request came in writing).
    pub came_by_phone: bool,
}

/// The next move out of a non-final stage.
struct Step {
    to: Stage,
    /// Working days it takes.
    days: (u32, u32),
    reason: &'static str,
    /// The proposal gets no follow-up at all.
    stall: bool,
}

fn step(rng: &mut ChaCha8Rng, stage: Stage) -> Step {
    let r: f64 = rng.random();
    let lost = |days, reasons: &[&'static str], rng: &mut ChaCha8Rng| Step {
        to: Stage::Lose,
        days,
        reason: reasons.choose(rng).copied().unwrap_or(BUDGET),
        stall: false,
    };
    let go = |to, days| Step { to, days, reason: "", stall: false };
    match stage {
        Stage::New if r < 0.08 => lost((0, 3), &[BUDGET, CANCELLED, COMPETITOR], rng),
        Stage::New if r < 0.18 => go(Stage::Proposal, (0, 3)),
        Stage::New => go(Stage::Preparation, (0, 2)),
        Stage::Preparation if r < 0.10 => lost((2, 10), &[BUDGET, COMPETITOR, CANCELLED], rng),
        Stage::Preparation => go(Stage::Proposal, (1, 8)),
        Stage::Proposal if r < 0.32 => {
            Step { to: Stage::LostNoAnswer, days: (10, 30), reason: NO_ANSWER_REASON, stall: true }
        }
        Stage::Proposal if r < 0.42 => lost((2, 10), &[COMPETITOR, COMMISSION, BUDGET], rng),
        Stage::Proposal if r < 0.46 => go(Stage::FinalInvoice, (3, 12)),
        Stage::Proposal => go(Stage::Executing, (2, 10)),
        Stage::Executing if r < 0.18 => lost((3, 15), &[COMMISSION, COMPETITOR, BUDGET], rng),
        Stage::Executing => go(Stage::FinalInvoice, (3, 12)),
        Stage::FinalInvoice if r < 0.06 => lost((5, 30), &[CANCELLED], rng),
        _ => go(Stage::Won, (2, 10)),
    }
}

/// Plays one deal from its creation to the cutoff.
pub(crate) fn live(rng: &mut ChaCha8Rng, s: &Setting<'_>) -> Story {
    let cal = s.calendar;
    let mut changes = vec![(Stage::New, s.created)];
    let mut acts = Vec::new();
    let (mut stage, mut t) = (Stage::New, s.created);
    let (mut reopened, mut reason) = (false, "");
    loop {
        let next = step(rng, stage);
        let at = cal.after(rng, s.branch, t, next.days.0, next.days.1);
        let open = at >= s.cutoff;
        stage_activities(rng, s, stage, t, at.min(s.cutoff), next.stall, open, &mut acts);
        if open {
            break;
        }
        changes.push((next.to, at));
        (stage, t, reason) = (next.to, at, next.reason);
        if stage == Stage::Lose && !reopened && rng.random_bool(0.05) {
            let again = cal.after(rng, s.branch, t, 5, 25);
            if again < s.cutoff {
                let to = if rng.random_bool(0.6) { Stage::Preparation } else { Stage::Proposal };
                changes.push((to, again));
                (stage, t, reason, reopened) = (to, again, "", true);
                continue;
            }
        }
        if stage.is_final() {
            break;
        }
    }
    let begin = moscow_date(s.created);
    let planned = begin + TimeDelta::days(rng.random_range(14..=60));
    let close_date = match changes.last() {
        // Managers usually correct the planned date when they close a deal, not always.
        Some((st, at)) if st.is_final() && rng.random_bool(0.8) => moscow_date(*at),
        _ => planned,
    };
    Story { changes, activities: acts, lost_reason: reason, close_date }
}

/// Places a stage's activities at random office-hours instants inside the stage.
struct StageWindow<'s, 'a> {
    setting: &'s Setting<'a>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &'s mut Vec<StoryActivity>,
}

impl StageWindow<'_, '_> {
    fn sample(&mut self, rng: &mut ChaCha8Rng, kind: ActivityKind, direction: &'static str, subject: &'static str) {
        let s = self.setting;
        if let Some(t) = s.calendar.between(rng, s.branch, self.from, self.to) {
            self.out.push(activity(rng, s, kind, direction, subject, self.from, t));
        }
    }
}

/// The activities of one stage, entered at `from` and left at `to` (or the cutoff, `open`).
#[allow(clippy::too_many_arguments)]
fn stage_activities(
    rng: &mut ChaCha8Rng,
    s: &Setting<'_>,
    stage: Stage,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    stall: bool,
    open: bool,
    out: &mut Vec<StoryActivity>,
) {
    let mut w = StageWindow { setting: s, from, to, out };
    match stage {
        Stage::New => {
            let first = if s.came_by_phone {
                instant(ActivityKind::Call, INCOMING, "Входящий звонок: заявка на продажу билетов", from, 240)
            } else {
                instant(ActivityKind::Email, INCOMING, "Входящее письмо: заявка на продажу билетов", from, 0)
            };
            w.out.push(first);
            if rng.random_bool(0.8) {
                w.sample(rng, ActivityKind::Call, OUTGOING, "Первый звонок клиенту");
            }
        }
        Stage::Preparation => {
            for _ in 0..rng.random_range(1..=2) {
                w.sample(rng, ActivityKind::Call, OUTGOING, "Звонок: условия продажи билетов");
            }
            if rng.random_bool(0.5) {
                w.sample(rng, ActivityKind::Meeting, NO_DIRECTION, "Встреча с клиентом");
            }
            if rng.random_bool(0.4) {
                w.sample(rng, ActivityKind::Email, OUTGOING, "Письмо: презентация и условия агентства");
            }
        }
        Stage::Proposal => {
            // The proposal is logged the moment the deal enters the stage; a stalled deal gets
            // nothing after it.
            w.out.push(instant(ActivityKind::Proposal, OUTGOING, "Отправлено коммерческое предложение", from, 0));
            if !stall {
                for _ in 0..rng.random_range(1..=2) {
                    w.sample(rng, ActivityKind::Call, OUTGOING, "Звонок по коммерческому предложению");
                }
                if rng.random_bool(0.4) {
                    w.sample(rng, ActivityKind::Email, INCOMING, "Ответ клиента на КП");
                }
            }
        }
        Stage::Executing => {
            if rng.random_bool(0.6) {
                w.sample(rng, ActivityKind::Meeting, NO_DIRECTION, "Встреча: обсуждение условий договора");
            }
            for _ in 0..rng.random_range(1..=2) {
                w.sample(rng, ActivityKind::Call, OUTGOING, "Звонок: согласование договора");
            }
            if rng.random_bool(0.5) {
                w.sample(rng, ActivityKind::Email, OUTGOING, "Письмо: проект договора");
            }
            w.sample(rng, ActivityKind::Task, NO_DIRECTION, "Подготовить проект договора");
        }
        Stage::FinalInvoice => {
            w.sample(rng, ActivityKind::Task, NO_DIRECTION, "Передать договор в бухгалтерию");
            if rng.random_bool(0.5) {
                w.sample(rng, ActivityKind::Email, OUTGOING, "Письмо: старт продаж и материалы для афиши");
            }
        }
        Stage::Won | Stage::Lose | Stage::LostNoAnswer => {}
    }
    // A deal still being worked on at the cutoff has its next step scheduled.
    if open
        && !stall
        && !stage.is_final()
        && let Some(created) = s.calendar.between(rng, s.branch, from, to)
    {
        let deadline = s.calendar.after(rng, s.branch, created, 1, 5);
        w.out.push(StoryActivity {
            kind: ActivityKind::Task,
            direction: NO_DIRECTION,
            subject: "Связаться с клиентом",
            created,
            start: created,
            end: deadline,
            deadline,
            completed: false,
            updated: created,
        });
    }
}

/// An activity that happens at `t` and lasts up to `max_secs`.
fn instant(
    kind: ActivityKind,
    direction: &'static str,
    subject: &'static str,
    t: DateTime<Utc>,
    max_secs: i64,
) -> StoryActivity {
    let end = t + TimeDelta::seconds(max_secs);
    StoryActivity { kind, direction, subject, created: t, start: t, end, deadline: t, completed: true, updated: end }
}

/// A completed activity starting at `t` in a stage entered at `stage_start`.
fn activity(
    rng: &mut ChaCha8Rng,
    s: &Setting<'_>,
    kind: ActivityKind,
    direction: &'static str,
    subject: &'static str,
    stage_start: DateTime<Utc>,
    t: DateTime<Utc>,
) -> StoryActivity {
    let mut a = instant(kind, direction, subject, t, 0);
    match kind {
        ActivityKind::Call => {
            a.end = t + TimeDelta::seconds(rng.random_range(40..900));
        }
        ActivityKind::Meeting => {
            // Meetings are booked in advance and last 30-90 minutes.
            a.created = s.calendar.between(rng, s.branch, stage_start, t).unwrap_or(t);
            a.end = t + TimeDelta::minutes(rng.random_range(30..=90));
            a.deadline = a.end;
        }
        ActivityKind::Task => {
            a.deadline = s.calendar.after(rng, s.branch, t, 1, 3);
            a.end =
                s.calendar.between(rng, s.branch, t, a.deadline.min(s.cutoff)).unwrap_or(t + TimeDelta::minutes(30));
        }
        ActivityKind::Email | ActivityKind::Proposal => {}
    }
    a.updated = a.end;
    if a.end >= s.cutoff {
        a.completed = false;
        a.updated = a.created;
    }
    a
}
