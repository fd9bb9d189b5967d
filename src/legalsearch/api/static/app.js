// The search page: plain DOM code over the JSON API, no build step, no external assets.
// Everything the API returns is put into the page as text (textContent), never as HTML, except the
// <mark>…</mark> pairs of snippets, which renderMarked turns into elements itself.
// The page's state lives in its URL: every action pushes a new URL and renders from it, so links share a
// search and the back button works.
"use strict";

const PAGE_SIZE = 10;
const FACETS = [["law", "Gesetz"], ["type", "Dokumenttyp"], ["court", "Gericht"], ["year", "Jahr"]];
const LIST_KEYS = ["law", "type", "court"];
const FACET_SHOWN = 6;
const TYPE_NAMES = {statute: "Norm", decision: "Entscheidung", annex: "Anlage", article: "Aufsatz"};
const KEY_STORE = "legalsearch.apiKey";

const $ = (id) => document.getElementById(id);
let renderToken = 0;
const expandedFacets = new Set();  // facets whose every value the user asked to see

// ---- URL state ----------------------------------------------------------------------------------------------

function readState() {
  const p = new URLSearchParams(location.search);
  const st = {q: (p.get("q") || "").trim(), doc: p.get("doc") || "", year: p.get("year") || "",
              page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1)};
  for (const key of LIST_KEYS) st[key] = p.getAll(key);
  return st;
}

function urlOf(st) {
  const parts = [];
  const add = (k, v) => parts.push(k + "=" + encodeURIComponent(v));
  if (st.q) add("q", st.q);
  for (const key of LIST_KEYS) for (const v of st[key] || []) add(key, v);
  if (st.year) add("year", st.year);
  if (st.page > 1) add("page", st.page);
  if (st.doc) add("doc", st.doc);
  return "/" + (parts.length ? "?" + parts.join("&") : "");
}

function go(st, extra) {
  history.pushState(Object.assign({}, extra || {}), "", urlOf(st));
  // a new search, filter or page starts at the top; back and forward leave scrolling to the browser
  window.scrollTo(0, 0);
  render();
}

function withChange(change) {
  // a new query or filter starts at page 1 and closes the document
  return Object.assign(readState(), {page: 1, doc: ""}, change);
}

// ---- the API ------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options) {
  const opts = Object.assign({headers: {}}, options || {});
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) opts.headers["X-API-Key"] = key;
  if (opts.json !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
    delete opts.json;
  }
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError(r.status, detailOf(body) || r.statusText);
  return body;
}

function detailOf(body) {
  if (!body || body.detail === undefined) return "";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((d) => (d.loc || []).join(".") + ": " + d.msg).join("; ");
}

// an optional endpoint (being built, or not on this server): null instead of an error when it is absent
async function optional(path, options) {
  try { return await api(path, options); } catch (e) {
    if (e.status === 404 || e.status === 405 || e.status === 422) return null;
    throw e;
  }
}

function filterParams(st) {
  const p = new URLSearchParams();
  for (const key of LIST_KEYS) for (const v of st[key]) p.append(key, v);
  if (/^\d{4}$/.test(st.year)) {
    p.set("date_from", st.year + "-01-01");
    p.set("date_to", st.year + "-12-31");
  }
  return p;
}

// ---- small DOM helpers --------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// the five entities html.escape writes; anything else stays as written (and is shown as text)
const ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#x27;": "'", "&#39;": "'"};
const unescapeHtml = (s) => s.replace(/&(amp|lt|gt|quot|#x27|#39);/g, (m) => ENTITIES[m]);

// A snippet is HTML-escaped text with matched terms in <mark>…</mark> (snippets.py). Only those pairs become
// elements; the text between them becomes text nodes, so a snippet can never inject markup.
function renderMarked(node, snippet) {
  node.textContent = "";
  let open = false;
  for (const part of String(snippet || "").split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") { open = true; continue; }
    if (part === "</mark>") { open = false; continue; }
    if (!part) continue;
    const text = document.createTextNode(unescapeHtml(part));
    node.append(open ? el("mark", {}, text) : text);
  }
  return node;
}

const showTerm = (t) => String(t).replace(/_/g, " ");
const typeName = (t) => TYPE_NAMES[t] || t;

function docLink(id, label) {
  const st = Object.assign(readState(), {doc: id});
  return el("a", {href: urlOf(st), class: "doc-link", "data-doc": id, onclick: (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    go(Object.assign(readState(), {doc: id}), {fromPage: true});
  }}, label);
}

function metaLine(item) {
  const m = item.metadata || {};
  const bits = [typeName(item.type)];
  if (m.law && item.type !== "statute") bits.push(m.law);
  if (m.court) bits.push(m.court);
  if (m.date) bits.push(formatDate(m.date));
  return el("div", {class: "meta"}, el("span", {class: "doc-id"}, item.id), " · ", bits.filter(Boolean).join(" · "));
}

function formatDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso));
  return m ? `${m[3]}.${m[2]}.${m[1]}` : String(iso);
}

function notice(text) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
}

function setModel(version) {
  if (version) $("model-info").textContent = "Modell " + version + " · ";
}

function showView(name) {
  for (const v of ["home-view", "results-view", "doc-view"]) $(v).hidden = v !== name;
}

function apiFailure(e) {
  if (e instanceof ApiError && e.status === 401) {
    $("key-box").open = true;
    return "Der Server verlangt einen API-Schlüssel (oben rechts eintragen): " + e.message;
  }
  if (e instanceof ApiError && e.status === 503) return "Kein Modell geladen: " + e.message;
  if (e instanceof ApiError) return "Anfrage abgelehnt (" + e.status + "): " + e.message;
  return "Server nicht erreichbar: " + e.message;
}

// ---- rendering ----------------------------------------------------------------------------------------------

async function render() {
  const token = ++renderToken;
  const st = readState();
  closeSuggestions();
  notice("");
  $("q").value = st.q;
  document.title = st.doc ? st.doc + " – legalsearch" : st.q ? st.q + " – legalsearch" : "legalsearch";
  try {
    if (st.doc) await renderDocument(st, token);
    else if (st.q) await renderSearch(st, token);
    else showView("home-view");
  } catch (e) {
    if (token === renderToken) notice(apiFailure(e));
  }
}

async function renderSearch(st, token) {
  const params = filterParams(st);
  params.set("q", st.q);
  params.set("k", PAGE_SIZE);
  params.set("offset", (st.page - 1) * PAGE_SIZE);
  const withFacets = new URLSearchParams(params);
  withFacets.set("facets", FACETS.map((f) => f[0]).join(","));
  let answer;
  try {
    answer = await api("/search?" + withFacets);
  } catch (e) {
    // a server without facets may refuse the parameter: ask again without it
    if (!(e instanceof ApiError) || e.status !== 422) throw e;
    answer = await api("/search?" + params);
  }
  if (token !== renderToken) return;
  setModel(answer.model);
  showView("results-view");
  renderFacets(st, answer.facets);
  const total = matching(answer.facets);
  renderInfo(st, answer, total);
  renderHits(answer.results || []);
  renderPager(st, (answer.results || []).length, total);
  renderRelated(st, answer, token);
}

// every matching document has one type, so the type counts add up to the number of matches (docs/api.md)
function matching(facets) {
  const types = facets && facets.type;
  return Array.isArray(types) ? types.reduce((sum, f) => sum + f.count, 0) : null;
}

function renderInfo(st, answer, total) {
  const info = $("result-info");
  info.textContent = "";
  const n = (answer.results || []).length;
  const first = (st.page - 1) * PAGE_SIZE;
  const of = total === null ? "" : ` von ${total.toLocaleString("de-DE")}`;
  info.append(n ? `Treffer ${first + 1}–${first + n}${of}` : "Keine Treffer");
  const added = (answer.expanded_terms || []).map((t) => showTerm(t.term));
  if (added.length) {
    const shown = added.slice(0, 5).join(", ") + (added.length > 5 ? ` und ${added.length - 5} weitere` : "");
    info.append(" · Suche erweitert um ", el("span", {class: "expanded", title: added.join(", ")}, shown));
  }
}

function renderHits(hits) {
  const list = $("results");
  list.textContent = "";
  for (const h of hits) {
    list.append(el("li", {class: "hit"},
      el("h2", {}, docLink(h.id, h.title || h.id)),
      metaLine(h),
      renderMarked(el("p", {class: "snippet"}), h.snippet),
      explanation(h)));
  }
}

function explanation(h) {
  const kws = ((h.explanation || {}).keywords || []).slice(0, 8);
  const matched = h.matched_terms || [];
  const rows = [];
  const named = (h.explanation || {}).cited_in_query;
  if (named) rows.push(el("dt", {}, "In der Anfrage genannt"), el("dd", {}, named));
  if (matched.length) rows.push(el("dt", {}, "Gefunden"), el("dd", {}, matched.map(showTerm).join(", ")));
  if (kws.length) {
    rows.push(el("dt", {}, "Gemeinsame Schlüsselwörter"),
      el("dd", {}, kws.map((k) => `${showTerm(k.term)} (${Number(k.weight).toFixed(2)})`).join(", ")));
  }
  const scores = [["Gesamt", h.score], ["BM25", h.lexical_score], ["Vektor", h.embedding_score]]
    .filter((s) => typeof s[1] === "number").map((s) => `${s[0]} ${s[1].toFixed(2)}`);
  if (scores.length) rows.push(el("dt", {}, "Bewertung"), el("dd", {}, scores.join(" · ")));
  if (!rows.length) return null;
  return el("details", {class: "why"}, el("summary", {}, "Warum dieser Treffer?"), el("dl", {}, ...rows));
}

function renderPager(st, n, total) {
  const nav = $("pager");
  nav.textContent = "";
  const more = n === PAGE_SIZE && (total === null || st.page * PAGE_SIZE < total);
  if (st.page > 1) {
    nav.append(el("button", {type: "button", onclick: () => go(Object.assign(readState(), {page: st.page - 1}))},
      "← Vorherige"));
  }
  if (st.page > 1 || more) nav.append(el("span", {class: "page-no"}, "Seite " + st.page));
  if (more) {
    nav.append(el("button", {type: "button", onclick: () => go(Object.assign(readState(), {page: st.page + 1}))},
      "Nächste →"));
  }
}

function renderFacets(st, facets) {
  const box = $("facets");
  box.textContent = "";
  const selectedAny = LIST_KEYS.some((k) => st[k].length) || st.year;
  const none = !facets && !selectedAny;
  box.hidden = none;
  $("results-view").classList.toggle("no-facets", none);
  if (none) return;
  for (const [field, label] of FACETS) {
    const selected = field === "year" ? (st.year ? [st.year] : []) : st[field];
    const counts = new Map(((facets || {})[field] || []).map((f) => [String(f.value), f.count]));
    for (const v of selected) if (!counts.has(v)) counts.set(v, null);
    if (!counts.size) continue;
    const list = el("ul", {});
    let shown = 0;
    for (const [value, count] of counts) {
      const on = selected.includes(value);
      if (!on && shown >= FACET_SHOWN && !expandedFacets.has(field)) continue;
      shown++;
      const input = el("input", {type: "checkbox", checked: on, "data-facet": field, value: value,
        onchange: () => toggleFacet(field, value, !on)});
      list.append(el("li", {class: on ? "on" : null}, el("label", {}, input,
        el("span", {class: "facet-value"}, field === "type" ? typeName(value) : value),
        count === null ? null : el("span", {class: "count"}, count))));
    }
    const hiddenCount = counts.size - shown;
    const more = hiddenCount > 0 ? el("button", {type: "button", class: "link-button",
      onclick: () => { expandedFacets.add(field); renderFacets(st, facets); }}, `${hiddenCount} weitere`) : null;
    box.append(el("section", {class: "facet", "data-field": field}, el("h3", {}, label), list, more));
  }
  if (selectedAny) {
    box.append(el("button", {type: "button", class: "link-button",
      onclick: () => go(withChange({law: [], type: [], court: [], year: ""}))}, "Filter zurücksetzen"));
  }
}

function toggleFacet(field, value, on) {
  if (field === "year") { go(withChange({year: on ? value : ""})); return; }
  const values = readState()[field].filter((v) => v !== value);
  if (on) values.push(value);
  go(withChange({[field]: values}));
}

async function renderRelated(st, answer, token) {
  const box = $("related");
  const list = $("related-terms");
  const inQuery = new Set((answer.query_terms || []).map(String));
  const found = new Map();
  const asked = (answer.query_terms || []).slice(0, 3);
  const answers = await Promise.all(asked.map((t) =>
    optional(`/terms/${encodeURIComponent(t)}/similar?k=5`).catch(() => null)));
  if (token !== renderToken) return;
  for (const a of answers) {
    for (const s of (a && a.similar) || []) {
      if (!inQuery.has(s.term) && !found.has(s.term)) found.set(s.term, s.score);
    }
  }
  list.textContent = "";
  const terms = [...found.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
  for (const [term] of terms) {
    list.append(el("li", {}, el("button", {type: "button", class: "chip", title: "zur Suche hinzufügen",
      onclick: () => go(withChange({q: (readState().q + " " + showTerm(term)).trim()}))}, "+ " + showTerm(term))));
  }
  box.hidden = terms.length === 0;
}

// ---- the document view --------------------------------------------------------------------------------------

async function renderDocument(st, token) {
  const doc = await api(`/documents/${encodeURIComponent(st.doc)}?keywords=12`);
  if (token !== renderToken) return;
  setModel(doc.model);
  const view = $("doc-view");
  view.textContent = "";
  view.append(backLink(st));
  view.append(el("header", {class: "doc-head"},
    el("h1", {}, doc.title || doc.id), metaLine(doc)));
  const main = el("div", {class: "doc-main"}, el("div", {class: "doc-text"}, doc.text));
  const side = el("aside", {class: "doc-side"});
  if ((doc.keywords || []).length) {
    side.append(el("section", {class: "keywords"}, el("h3", {}, "Schlüsselwörter"),
      el("ul", {}, ...doc.keywords.map((k) => el("li", {}, el("a", {
        href: urlOf({q: showTerm(k.term), law: [], type: [], court: [], year: "", page: 1, doc: ""}),
        class: "chip", title: "Gewicht " + Number(k.weight).toFixed(3)}, showTerm(k.term)))))));
  }
  const recs = el("section", {class: "recommendations", hidden: true}, el("h3", {}, "Ähnliche Dokumente"));
  const cites = el("section", {class: "citations", hidden: true}, el("h3", {}, "Zitiert"));
  const citedBy = el("section", {class: "cited-by", hidden: true}, el("h3", {}, "Zitiert von"));
  side.append(cites, citedBy, recs);
  view.append(el("div", {class: "doc-body"}, main, side));
  showView("doc-view");
  await Promise.all([
    fillRecommendations(recs, doc.id, token),
    fillCitations(cites, doc.id, token),
    fillCitedBy(citedBy, doc.id, 0, token),
  ]);
}

function backLink(st) {
  const results = Object.assign({}, st, {doc: ""});
  if (!st.q) return el("a", {class: "back", href: "/"}, "← Zur Suche");
  return el("a", {class: "back", href: urlOf(results), onclick: (ev) => {
    ev.preventDefault();
    // opened from this page: going back keeps the browser's history as the user expects
    if (history.state && history.state.fromPage) history.back();
    else go(results);
  }}, "← Zurück zu den Ergebnissen");
}

async function fillRecommendations(box, id, token) {
  const answer = await optional("/recommend", {json: {positive: [id], k: 6}}).catch(() => null);
  if (token !== renderToken || !answer || !(answer.results || []).length) return;
  box.append(el("ol", {class: "mini-list"}, ...answer.results.map((r) => el("li", {},
    docLink(r.id, r.title || r.id), el("div", {class: "meta"}, r.id + " · " + typeName(r.type))))));
  box.hidden = false;
}

const UNRESOLVED = {"unknown law": "Gesetz nicht im Korpus", "missing section": "Vorschrift nicht im Korpus",
                    "no law": "ohne Gesetz", "malformed range": "fehlerhafter Bereich",
                    "not indexed": "weggefallen oder leer"};

// the span of the text that cites, quoted under the link ("§ 13 Abs. 2 Nr. 2 DMietG", 2×)
function citedAs(link) {
  const times = link.count > 1 ? ` (${link.count}×)` : "";
  return el("div", {class: "meta"}, `„${link.surface}“${times} · ${typeName(link.type)}`);
}

// GET /documents/{id}/citations: the documents it cites, and citations that name no document of the corpus
async function fillCitations(box, id, token) {
  const answer = await optional(`/documents/${encodeURIComponent(id)}/citations`).catch(() => null);
  if (token !== renderToken || !answer) return;
  const links = answer.citations || [];
  const unresolved = answer.unresolved || [];
  if (!links.length && !unresolved.length) return;
  box.querySelector("h3").textContent = `Zitiert (${links.length})`;
  const list = el("ul", {class: "mini-list"});
  for (const c of links) list.append(el("li", {}, docLink(c.id, c.title || c.id), citedAs(c)));
  for (const c of unresolved) {
    list.append(el("li", {class: "unresolved"}, `„${c.surface}“`,
      el("div", {class: "meta"}, "nicht aufgelöst: " + (UNRESOLVED[c.reason] || c.reason))));
  }
  box.append(list);
  box.hidden = false;
}

// GET /documents/{id}/cited-by: the citing documents, a page at a time
async function fillCitedBy(box, id, offset, token) {
  const limit = 10;
  const answer = await optional(
    `/documents/${encodeURIComponent(id)}/cited-by?offset=${offset}&limit=${limit}`).catch(() => null);
  if (token !== renderToken || !answer || !answer.total) return;
  let list = box.querySelector("ul");
  if (!list) { list = el("ul", {class: "mini-list"}); box.append(list); }
  for (const c of answer.cited_by || []) list.append(el("li", {}, docLink(c.id, c.title || c.id), citedAs(c)));
  box.querySelector(".more")?.remove();
  if (offset + limit < answer.total) {
    box.append(el("button", {type: "button", class: "link-button more",
      onclick: () => fillCitedBy(box, id, offset + limit, renderToken)}, "Weitere"));
  }
  box.querySelector("h3").textContent = `Zitiert von (${answer.total})`;
  box.hidden = false;
}

// ---- suggestions --------------------------------------------------------------------------------------------

let suggestTimer = 0;
let suggestToken = 0;
let suggestItems = [];
let suggestActive = -1;

function closeSuggestions() {
  const ul = $("suggestions");
  ul.hidden = true;
  ul.textContent = "";
  suggestItems = [];
  suggestActive = -1;
  $("q").setAttribute("aria-expanded", "false");
}

const SUGGESTIONS = 8;

// /suggest completes the whole input as one prefix ("ordentliche kü"); once a question has several words, the
// last word is completed too ("Kündigung wegen Eigenb" -> "eigenbedarf"), and picking one replaces that word
async function suggest(text) {
  const token = ++suggestToken;
  if (text.trim().length < 2) { closeSuggestions(); return; }
  const words = text.trim().split(/\s+/);
  const last = words.length > 1 && words[words.length - 1].length >= 2 ? words[words.length - 1] : "";
  const ask = (q) => optional(`/suggest?q=${encodeURIComponent(q)}&k=${SUGGESTIONS}`).catch(() => null);
  const [whole, lastWord] = await Promise.all([ask(text.trim()), last ? ask(last) : null]);
  if (token !== suggestToken || $("q").value !== text) return;
  const items = ((whole && whole.suggestions) || []).map((s) => Object.assign({replaces: "all"}, s));
  const seen = new Set(items.map((s) => s.text));
  for (const s of (lastWord && lastWord.suggestions) || []) {
    if (!seen.has(s.text) && s.kind !== "law" && s.kind !== "section") items.push(Object.assign({replaces: "last"}, s));
  }
  showSuggestions(items.slice(0, SUGGESTIONS));
}

const KIND_NAMES = {keyword: "Begriff", phrase: "Wendung", law: "Gesetz", section: "Norm"};

function showSuggestions(items) {
  if (!items.length) { closeSuggestions(); return; }
  const ul = $("suggestions");
  ul.textContent = "";
  suggestItems = items;
  suggestActive = -1;
  items.forEach((s, i) => {
    ul.append(el("li", {role: "option", id: "sugg-" + i, class: "kind-" + s.kind,
      onmousedown: (ev) => { ev.preventDefault(); pickSuggestion(i); }},
      el("span", {class: "sugg-text"}, s.text),
      el("span", {class: "sugg-kind"}, KIND_NAMES[s.kind] || s.kind || "")));
  });
  ul.hidden = false;
  $("q").setAttribute("aria-expanded", "true");
}

// a section opens its document; a law narrows the search to it; a term completes the input
function pickSuggestion(i) {
  const s = suggestItems[i];
  const words = $("q").value.trim().split(/\s+/);
  closeSuggestions();
  if (!s) return;
  if (s.kind === "section" && s.id) {
    go(Object.assign(readState(), {doc: s.id}), {fromPage: true});
    return;
  }
  const before = s.replaces === "last" ? words.slice(0, -1).join(" ") : "";
  if (s.kind === "law" && s.law) {
    // the search needs a query: the law's abbreviation finds its sections
    go(withChange({q: s.law, law: [s.law]}));
    return;
  }
  go(withChange({q: (before + " " + s.text).trim()}));
}

function moveActive(step) {
  if (!suggestItems.length) return;
  suggestActive = (suggestActive + step + suggestItems.length) % suggestItems.length;
  const ul = $("suggestions");
  [...ul.children].forEach((li, i) => li.classList.toggle("active", i === suggestActive));
  $("q").setAttribute("aria-activedescendant", "sugg-" + suggestActive);
}

// ---- wiring -------------------------------------------------------------------------------------------------

function wire() {
  const q = $("q");
  q.addEventListener("input", () => {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(() => suggest(q.value), 120);
  });
  q.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { ev.preventDefault(); moveActive(1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); moveActive(-1); }
    else if (ev.key === "Escape") closeSuggestions();
    else if (ev.key === "Enter" && suggestActive >= 0) { ev.preventDefault(); pickSuggestion(suggestActive); }
  });
  q.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = q.value.trim();
    suggestToken++;
    if (text) go(withChange({q: text}));
  });
  $("home-link").addEventListener("click", (ev) => { ev.preventDefault(); go({q: "", law: [], type: [], court: [],
    year: "", page: 1, doc: ""}); });
  for (const a of document.querySelectorAll("#examples a")) {
    a.addEventListener("click", (ev) => { ev.preventDefault(); history.pushState({}, "", a.href); render(); });
  }
  const keyInput = $("api-key");
  keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (keyInput.value) sessionStorage.setItem(KEY_STORE, keyInput.value);
    else sessionStorage.removeItem(KEY_STORE);
    $("key-box").open = false;
    render();
  });
  window.addEventListener("popstate", render);
  render();
}

wire();
