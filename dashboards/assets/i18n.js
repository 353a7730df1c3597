// @ts-check
// The UI texts in both languages (Russian first), the current language, and the words for stage,
// state and metric ids.
"use strict";

/** @typedef {{ ru: string, en: string }} Label a definition's text in both languages */

/** @type {"ru" | "en"} */
let lang = "ru";

/** @param {string} l "en" or anything else for Russian */
export function setLang(l) {
  lang = l === "en" ? "en" : "ru";
  document.documentElement.lang = lang;
}

export function currentLang() {
  return lang;
}

/** The reporting currency's symbol: labels are written with `₽` (definitions, metric names). */
let moneySymbol = "₽";

/** @param {string} symbol the reporting currency's symbol (`$` when the API reports in USD) */
export function setMoneySymbol(symbol) {
  moneySymbol = symbol;
}

/** @param {string} text */
function withMoney(text) {
  return moneySymbol === "₽" ? text : text.split("₽").join(moneySymbol);
}

/**
 * A definition's {ru, en} label in the current language.
 * @param {Label | null | undefined} label
 * @param {string} [fallback]
 */
export function L(label, fallback = "") {
  if (!label) return fallback;
  return withMoney(label[lang] || label.ru || fallback);
}

/** @type {Record<string, Record<string, string>>} */
const TEXTS = {
  ru: {
    period: "Период", from: "с", to: "по", holding: "Холдинг", branch: "Филиал", manager: "Менеджер",
    pipeline: "Воронка", mainPipeline: "основная", allPipelines: "все воронки вместе",
    all: "все", allF: "все", reset: "Сбросить фильтры", showData: "Показать данные", hideData: "Скрыть данные",
    loading: "Загрузка…", noData: "Нет данных за выбранный период", error: "Не удалось загрузить",
    vsPrev: "к пред. периоду", plan: "план", planDone: "выполнено", noPlan: "план не задан",
    of: "из", deals: "Сделки", close: "Закрыть", more: "Показать ещё", total: "Всего",
    needToken: "Для доступа нужен токен", badToken: "Токен не принят", login: "Войти", logout: "Выйти",
    tokenLabel: "Токен доступа", loginTitle: "Вход", loginHint: "Токен выдаёт администратор dealhouse.",
    notFiltered: "Не фильтруется по", compare: "Сравнить с", none: "—", prevPeriod: "предыдущим периодом",
    allDeals: "все сделки", stalled: "зависла", daysInStage: "дн. на этапе", weighted: "прогноз",
    deal: "Сделка", client: "Клиент", stage: "Этап", status: "Статус", amount: "Сумма", commission: "Комиссия",
    created: "Создана", closed: "Закрыта", history: "Этапы", activities: "Активности", entered: "Вход",
    left: "Выход", days: "Дней", type: "Тип", when: "Когда", result: "Результат", dealNotFound: "Сделка не найдена",
    months12: "12 мес. по", language: "Язык", menu: "Дашборды", drillHint: "Нажмите, чтобы увидеть сделки",
    lostReason: "Причина проигрыша", skip: "Перейти к содержимому", current: "сейчас", selected: "выбрано",
    mtd: "Месяц по сегодня", mtdHint: "Текущий месяц по", toDate: "по", vsPrevOption: "предыдущим периодом",
    vsYearOption: "тем же периодом год назад", vsSameDays: "к тем же дням пред. периода",
    vsYear: "к тому же периоду год назад", partial: "неполный период: не сравнивается",
    noHistory: "мало истории", immature: "незрелая когорта", stillOpen: "ещё открыто", monthsShort: "мес.",
  },
  en: {
    period: "Period", from: "from", to: "to", holding: "Holding", branch: "Branch", manager: "Manager",
    pipeline: "Pipeline", mainPipeline: "main", allPipelines: "all pipelines summed",
    all: "all", allF: "all", reset: "Reset filters", showData: "Show data", hideData: "Hide data",
    loading: "Loading…", noData: "No data for the selected period", error: "Could not load",
    vsPrev: "vs previous period", plan: "plan", planDone: "done", noPlan: "no plan set",
    of: "of", deals: "Deals", close: "Close", more: "Show more", total: "Total",
    needToken: "A token is needed", badToken: "The token was not accepted", login: "Sign in", logout: "Sign out",
    tokenLabel: "Access token", loginTitle: "Sign in", loginHint: "Your dealhouse administrator issues tokens.",
    notFiltered: "Not filtered by", compare: "Compare with", none: "—", prevPeriod: "the previous period",
    allDeals: "all deals", stalled: "stalled", daysInStage: "days in stage", weighted: "forecast",
    deal: "Deal", client: "Client", stage: "Stage", status: "Status", amount: "Amount", commission: "Commission",
    created: "Created", closed: "Closed", history: "Stages", activities: "Activities", entered: "Entered",
    left: "Left", days: "Days", type: "Type", when: "When", result: "Result", dealNotFound: "No such deal",
    months12: "12 months to", language: "Language", menu: "Dashboards", drillHint: "Click to see the deals",
    lostReason: "Lost because", skip: "Skip to content", current: "now", selected: "selected",
    mtd: "Month to date", mtdHint: "This month up to", toDate: "to", vsPrevOption: "the previous period",
    vsYearOption: "the same period last year", vsSameDays: "vs the same days of the previous period",
    vsYear: "vs the same period last year", partial: "partial period: not compared",
    noHistory: "not enough history", immature: "immature cohort", stillOpen: "still open", monthsShort: "months",
  },
};

/**
 * A UI text in the current language.
 * @param {string} key
 */
export function tr(key) {
  return (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.ru[key] || key;
}

/** @type {Record<string, Record<string, string>>} */
const VALUE_LABELS = {
  ru: {
    new: "Новая", contact: "Контакт", proposal: "КП отправлено", negotiation: "Переговоры", contract: "Договор",
    won: "Выиграна", lost: "Проиграна", open: "В работе", active: "Активные", at_risk: "Под угрозой",
    churned: "Ушедшие", reactivated: "Вернувшиеся", in_progress: "В работе", done: "Выполнена",
    rejected: "Отклонена", won_amount: "Выиграно, ₽", commission: "Комиссия, ₽", deals_won: "Выиграно сделок",
    calls: "Звонки", meetings: "Встречи", new_clients: "Новые клиенты", call: "Звонок", meeting: "Встреча",
    email: "Письмо", proposal_sent: "КП", contract_signed: "Договор", task: "Задача",
  },
  en: {
    new: "New", contact: "Contact", proposal: "Proposal sent", negotiation: "Negotiation", contract: "Contract",
    won: "Won", lost: "Lost", open: "Open", active: "Active", at_risk: "At risk", churned: "Churned",
    reactivated: "Came back", in_progress: "In progress", done: "Done", rejected: "Rejected",
    won_amount: "Won, ₽", commission: "Commission, ₽", deals_won: "Deals won", calls: "Calls",
    meetings: "Meetings", new_clients: "New clients", call: "Call", meeting: "Meeting", email: "Email",
    proposal_sent: "Proposal", contract_signed: "Contract", task: "Task",
  },
};

/**
 * A stage, state, status or metric id as words.
 * @param {string} v
 */
export function valueLabel(v) {
  return withMoney((VALUE_LABELS[lang] && VALUE_LABELS[lang][v]) || v);
}
