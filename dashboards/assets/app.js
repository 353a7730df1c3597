// Minimal overview: KPI cards and tables from the read-only SQL endpoint.
"use strict";
const rub = new Intl.NumberFormat("ru-RU", { maximumFractionDigits: 0 });
const pct = new Intl.NumberFormat("ru-RU", { style: "percent", maximumFractionDigits: 1 });

async function sql(query) {
  const r = await fetch("/api/v1/sql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql: query }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body.rows;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function table(el, rows, columns, barColumn) {
  const max = barColumn ? Math.max(1, ...rows.map((r) => Number(r[barColumn]) || 0)) : 0;
  const head = columns.map(([, label]) => `<th scope="col">${label}</th>`).join("");
  const body = rows.map((r) => "<tr>" + columns.map(([key, , fmt]) => {
    const v = r[key];
    const text = fmt ? fmt(v) : (v ?? "");
    const bar = key === barColumn ? ` <span class="bar" style="width:${Math.round(80 * (Number(v) || 0) / max)}px"></span>` : "";
    return `<td>${esc(text)}${bar}</td>`;
  }).join("") + "</tr>").join("");
  el.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function card(label, value) {
  return `<div class="card"><div class="v">${value}</div><div class="l">${label}</div></div>`;
}

async function main() {
  try {
    const [k] = await sql(`select
        count(*) as deals,
        sum(case when status = 'open' then 1 else 0 end) as open_deals,
        sum(case when status = 'won' then 1 else 0 end) as won,
        sum(case when status = 'lost' then 1 else 0 end) as lost,
        sum(case when status = 'won' then amount end) as won_amount,
        sum(case when status = 'won' then commission end) as commission,
        max(updated_at) as as_of
      from deals`);
    document.getElementById("asof").textContent = k.as_of ? "данные на " + k.as_of.slice(0, 10) : "";
    document.getElementById("kpis").innerHTML =
      card("Сделок всего", rub.format(k.deals)) +
      card("Открытых сделок", rub.format(k.open_deals)) +
      card("Win rate", pct.format(k.won / Math.max(1, Number(k.won) + Number(k.lost)))) +
      card("Выручка по выигранным, ₽", rub.format(k.won_amount)) +
      card("Комиссия, ₽", rub.format(k.commission));
    const stages = await sql(`select stage, count(*) as deals, sum(amount) as amount, sum(commission) as commission
      from deals where status = 'open' group by stage
      order by case stage when 'new' then 1 when 'contact' then 2 when 'proposal' then 3 when 'negotiation' then 4 when 'contract' then 5 else 6 end`);
    table(document.getElementById("pipeline"), stages,
      [["stage", "Этап"], ["deals", "Сделок"], ["amount", "Сумма, ₽", (v) => rub.format(v)], ["commission", "Комиссия, ₽", (v) => rub.format(v)]], "amount");
    const months = await sql(`select date_trunc('month', closed_at) as month, count(*) as won, sum(amount) as amount
      from deals where status = 'won' and closed_at is not null group by 1 order by 1`);
    table(document.getElementById("monthly"), months.map((m) => ({ ...m, month: String(m.month).slice(0, 7) })),
      [["month", "Месяц"], ["won", "Выиграно"], ["amount", "Сумма, ₽", (v) => rub.format(v)]], "amount");
    const branches = await sql(`select b.name as branch, count(*) as deals,
        sum(case when d.status = 'won' then 1 else 0 end) as won, sum(case when d.status = 'won' then d.amount end) as amount
      from deals d join branches b on d.branch_id = b.branch_id group by b.name order by amount desc nulls last`);
    table(document.getElementById("branches"), branches,
      [["branch", "Филиал"], ["deals", "Сделок"], ["won", "Выиграно"], ["amount", "Сумма, ₽", (v) => rub.format(v)]], "amount");
  } catch (e) {
    document.querySelector("main").insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(e.message)}</p>`);
  }
}
main();
