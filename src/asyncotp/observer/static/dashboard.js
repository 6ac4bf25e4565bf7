// asyncotp observer: draws the snapshots that /api/events streams.
// Plain JavaScript, no dependencies. Every user-provided string goes through
// textContent, never innerHTML.
"use strict";

const FLASH_MS = 2000; // how long a restarted child stays highlighted
const SPARK_SECONDS = 60; // the sparkline's window
const TOP_ROWS = 10;

const view = {
  snapshot: null,
  restarts: new Map(), // node key -> restarts in the previous snapshot
  flashUntil: new Map(), // node key -> time (ms) its highlight ends
  flashStarted: new Set(), // node keys whose highlight has been drawn once
  perSecond: new Map(), // second (epoch) -> restarts seen in it
  items: new Map(), // node key -> {child, tree} of the last snapshot
  selected: null, // a node key, or "pid:N" for an actor of the table
  topBy: "mailbox",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function label(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const KIND_LABEL = { supervisor: "SUP", genserver: "GEN", actor: "ACT", worker: "WRK" };

// -- the trees ----------------------------------------------------------------

// Every supervisor and child gets a stable key: its path of ids from its root,
// so that a restarted child (a new pid) is the same node on the page.
function collect(tree, key, into) {
  into.set(key, { tree, child: null });
  const seen = new Map();
  for (const child of tree.children) {
    const id = label(child.id);
    const n = seen.get(id) || 0;
    seen.set(id, n + 1);
    const childKey = `${key}/${id}${n ? "#" + n : ""}`;
    into.set(childKey, { tree, child });
    if (child.supervisor) collect(child.supervisor, childKey, into);
  }
}

function rootKey(tree) {
  return tree.name !== null ? `@${tree.name}` : `#${tree.pid}`;
}

function card(key, parts) {
  const node = el("span", "card");
  node.dataset.key = key;
  for (const part of parts) if (part) node.appendChild(part);
  const until = view.flashUntil.get(key);
  if (until && until > Date.now()) {
    node.classList.add("flash");
    if (!view.flashStarted.has(key)) {
      // The pulse plays once, on the first drawing after the restart.
      view.flashStarted.add(key);
      node.classList.add("flash-start");
    }
  } else if (until) {
    view.flashUntil.delete(key);
    view.flashStarted.delete(key);
  }
  if (view.selected === key) node.classList.add("selected");
  node.addEventListener("click", (event) => {
    event.stopPropagation();
    view.selected = key;
    render();
  });
  return node;
}

function childCard(key, child) {
  const kind = child.supervisor ? "supervisor" : child.kind;
  const restarts = el("span", `restarts${child.restarts ? " some" : ""}`, `↻ ${child.restarts}`);
  restarts.title = "restarts";
  const status = child.state === "running" ? child.status || "running" : child.state;
  const dot = el("span", `dot ${status}`);
  dot.title = status;
  const node = card(key, [
    el("span", `kind ${kind}`, KIND_LABEL[kind] || kind),
    el("span", "id", label(child.id)),
    child.pid !== null ? el("span", "pid", `<${child.pid}>`) : null,
    child.name && child.name !== child.id ? el("span", "meta", child.name) : null,
    child.behaviour ? el("span", "meta", child.behaviour) : null,
    dot,
    child.state !== "running" ? el("span", "meta", child.state) : null,
    child.mailbox_length ? el("span", "mailbox", `✉ ${child.mailbox_length}`) : null,
    restarts,
  ]);
  node.dataset.childId = label(child.id);
  node.dataset.restarts = String(child.restarts);
  node.dataset.state = child.state;
  return node;
}

function supervisorLine(tree) {
  const parts = [];
  if (tree.strategy) parts.push(tree.strategy);
  if (tree.max_restarts !== null) {
    parts.push(`${tree.restarts_in_window}/${tree.max_restarts} in ${tree.max_seconds}s`);
  }
  if (tree.state !== "running") parts.push(tree.state);
  return el("span", "meta", parts.join(" · "));
}

function drawChildren(tree, key) {
  const list = el("ul");
  const seen = new Map();
  for (const child of tree.children) {
    const id = label(child.id);
    const n = seen.get(id) || 0;
    seen.set(id, n + 1);
    const childKey = `${key}/${id}${n ? "#" + n : ""}`;
    const item = el("li");
    const node = childCard(childKey, child);
    if (child.supervisor) node.appendChild(supervisorLine(child.supervisor));
    item.appendChild(node);
    if (child.supervisor && child.supervisor.children.length) {
      item.appendChild(drawChildren(child.supervisor, childKey));
    }
    list.appendChild(item);
  }
  return list;
}

function drawTrees(snapshot) {
  const box = document.getElementById("trees");
  box.replaceChildren();
  if (!snapshot.trees.length) {
    box.appendChild(el("p", "empty", "No supervision tree is running."));
    return;
  }
  for (const tree of snapshot.trees) {
    const key = rootKey(tree);
    const wrap = el("div", "tree");
    const root = card(key, [
      el("span", "kind supervisor", tree.dynamic ? "DYN" : "SUP"),
      el("span", "id", tree.name !== null ? tree.name : tree.behaviour),
      el("span", "pid", `<${tree.pid}>`),
      el("span", `dot ${tree.state === "running" ? "running" : tree.state}`),
      supervisorLine(tree),
    ]);
    root.classList.add("root");
    root.dataset.childId = tree.name !== null ? tree.name : `<${tree.pid}>`;
    wrap.appendChild(root);
    wrap.appendChild(drawChildren(tree, key));
    box.appendChild(wrap);
  }
}

// -- details ------------------------------------------------------------------

function actorByPid(pid) {
  if (!view.snapshot || pid === null) return null;
  return view.snapshot.actors.find((actor) => actor.pid === pid) || null;
}

function drawDetails() {
  const box = document.getElementById("details");
  box.replaceChildren();
  const rows = [];
  let title = null;
  const selected = view.selected;
  if (selected && selected.startsWith("pid:")) {
    const actor = actorByPid(Number(selected.slice(4)));
    if (actor) title = actor.name || `${actor.behaviour} <${actor.pid}>`;
    appendActor(rows, actor);
  } else if (selected && view.items.has(selected)) {
    const { tree, child } = view.items.get(selected);
    if (child === null) {
      title = tree.name !== null ? tree.name : `${tree.behaviour} <${tree.pid}>`;
      rows.push(["supervisor", tree.behaviour + (tree.dynamic ? " (dynamic)" : "")]);
      rows.push(["state", tree.state]);
      rows.push(["strategy", tree.strategy]);
      rows.push(["restarts in window", `${tree.restarts_in_window} of max ${tree.max_restarts} in ${tree.max_seconds} s`]);
      rows.push(["children", tree.children.length]);
      appendActor(rows, actorByPid(tree.pid));
    } else {
      title = label(child.id);
      rows.push(["child id", label(child.id)]);
      rows.push(["state", child.state]);
      rows.push(["restarts", child.restarts]);
      rows.push(["restart type", child.restart]);
      rows.push(["child type", child.type]);
      if (child.supervisor) rows.push(["strategy", child.supervisor.strategy]);
      appendActor(rows, actorByPid(child.pid));
    }
  }
  if (title === null) {
    box.appendChild(el("p", "empty", selected ? "That actor is gone." : "Click a supervisor, a child or an actor."));
    return;
  }
  box.appendChild(el("h3", null, title));
  const list = el("dl");
  for (const [name, value] of rows) {
    list.appendChild(el("dt", null, name));
    list.appendChild(el("dd", null, value === null || value === undefined ? "—" : value));
  }
  box.appendChild(list);
}

function appendActor(rows, actor) {
  if (!actor) {
    rows.push(["actor", "not running"]);
    return;
  }
  rows.push(["pid", `<${actor.pid}>`]);
  rows.push(["name", actor.name]);
  rows.push(["kind", `${actor.kind} (${actor.behaviour})`]);
  rows.push(["status", actor.status]);
  rows.push(["mailbox", `${actor.mailbox_length} queued${actor.dropped ? `, ${actor.dropped} dropped` : ""}`]);
  rows.push(["links", actor.links]);
  rows.push(["monitors", `${actor.monitors} held, ${actor.monitored_by} on it`]);
  rows.push(["parent", actor.parent === null ? null : `<${actor.parent}>`]);
  rows.push(["traps exits", actor.trap_exits ? "yes" : "no"]);
  rows.push(["uptime", duration(actor.uptime)]);
  rows.push(["memory (est.)", bytes(actor.memory)]);
}

// -- restarts over time -------------------------------------------------------

function countRestarts(items) {
  const now = Date.now();
  let delta = 0;
  for (const [key, item] of items) {
    if (item.child === null) continue;
    const before = view.restarts.get(key);
    if (before !== undefined && item.child.restarts > before) {
      delta += item.child.restarts - before;
      view.flashUntil.set(key, now + FLASH_MS);
      view.flashStarted.delete(key);
    }
  }
  view.restarts = new Map();
  for (const [key, item] of items) if (item.child !== null) view.restarts.set(key, item.child.restarts);
  const second = Math.floor(now / 1000);
  view.perSecond.set(second, (view.perSecond.get(second) || 0) + delta);
  for (const old of view.perSecond.keys()) if (old <= second - SPARK_SECONDS) view.perSecond.delete(old);
}

function drawSparkline() {
  const svg = document.getElementById("sparkline");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const second = Math.floor(Date.now() / 1000);
  const values = [];
  for (let i = SPARK_SECONDS - 1; i >= 0; i--) values.push(view.perSecond.get(second - i) || 0);
  const peak = Math.max(1, ...values);
  const width = 300 / SPARK_SECONDS;
  const base = document.createElementNS(ns, "line");
  base.setAttribute("x1", "0"); base.setAttribute("x2", "300");
  base.setAttribute("y1", "47.5"); base.setAttribute("y2", "47.5");
  svg.appendChild(base);
  values.forEach((value, i) => {
    if (!value) return;
    const height = Math.max(3, (value / peak) * 44);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(i * width + 0.5));
    bar.setAttribute("width", String(width - 1));
    bar.setAttribute("y", String(48 - height));
    bar.setAttribute("height", String(height));
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${value} restart(s), ${SPARK_SECONDS - 1 - i} s ago`;
    bar.appendChild(tip);
    svg.appendChild(bar);
  });
  const total = values.reduce((a, b) => a + b, 0);
  const summary = document.getElementById("restart-summary");
  summary.textContent = `${total} in the last minute · ${view.snapshot ? view.snapshot.totals.restarts : 0} in all`;
  summary.dataset.total = String(total);
}

// -- the busiest actors -------------------------------------------------------

const SORT = {
  mailbox: (a) => a.mailbox_length,
  restarts: (a) => a.restarts,
  memory: (a) => a.memory,
  uptime: (a) => a.uptime,
  links: (a) => a.links,
  monitored_by: (a) => a.monitored_by,
};

function drawTop(snapshot) {
  const body = document.querySelector("#top tbody");
  body.replaceChildren();
  const key = SORT[view.topBy] || SORT.mailbox;
  const ranked = [...snapshot.actors].sort((a, b) => key(b) - key(a) || a.pid - b.pid);
  for (const actor of ranked.slice(0, TOP_ROWS)) {
    const row = el("tr");
    row.dataset.pid = String(actor.pid);
    const who = actor.name || (actor.child_id !== null ? label(actor.child_id) : null);
    row.appendChild(el("td", null, `<${actor.pid}>`));
    row.appendChild(el("td", null, who && who !== actor.behaviour ? `${who} · ${actor.behaviour}` : actor.behaviour));
    row.appendChild(el("td", null, actor.status));
    row.appendChild(el("td", `num${actor.mailbox_length ? " hot" : ""}`, actor.mailbox_length));
    row.appendChild(el("td", "num", bytes(actor.memory)));
    row.appendChild(el("td", `num${actor.restarts ? " hot" : ""}`, actor.restarts));
    row.appendChild(el("td", "num", duration(actor.uptime)));
    row.addEventListener("click", () => {
      view.selected = `pid:${actor.pid}`;
      render();
    });
    body.appendChild(row);
  }
}

function drawTotals(snapshot) {
  const box = document.getElementById("totals");
  box.replaceChildren();
  const t = snapshot.totals;
  const time = new Date(snapshot.taken_at * 1000).toLocaleTimeString();
  for (const [name, value] of [
    ["actors", t.actors],
    ["supervisors", t.supervisors],
    ["restarts", t.restarts],
    ["queued", t.mailbox],
    ["memory (est.)", bytes(t.memory)],
    ["at", time],
  ]) {
    const pair = el("div");
    pair.appendChild(el("dt", null, name));
    pair.appendChild(el("dd", null, value));
    box.appendChild(pair);
  }
}

// -- wiring -------------------------------------------------------------------

function render() {
  const snapshot = view.snapshot;
  if (!snapshot) return;
  drawTrees(snapshot);
  drawDetails();
  drawTop(snapshot);
  drawSparkline();
}

function update(snapshot) {
  const items = new Map();
  for (const tree of snapshot.trees) collect(tree, rootKey(tree), items);
  view.snapshot = snapshot;
  view.items = items;
  countRestarts(items);
  drawTotals(snapshot);
  render();
}

function setConnection(state, text) {
  const box = document.getElementById("connection");
  box.dataset.state = state;
  box.textContent = text;
}

function connect() {
  const source = new EventSource("api/events");
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("snapshot", (event) => {
    document.getElementById("failure").hidden = true;
    update(JSON.parse(event.data));
  });
  source.addEventListener("failure", (event) => {
    const box = document.getElementById("failure");
    box.textContent = JSON.parse(event.data).error;
    box.hidden = false;
  });
  source.addEventListener("error", () => {
    setConnection(source.readyState === EventSource.CLOSED ? "offline" : "connecting", "reconnecting…");
  });
}

document.getElementById("top-by").addEventListener("change", (event) => {
  view.topBy = event.target.value;
  render();
});
connect();
