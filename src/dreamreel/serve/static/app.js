// dreamreel studio: forms from /api/forms (the recipe fields), jobs on the server's queue, progress
// from server-sent events, the gallery of the output folder. Plain JS, no build step, works offline.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { forms: {}, job: null, watched: new URLSearchParams(location.search).get("job"), current: null };
window.studio = { progressLog: [], doneEvents: {} };  // what the browser tests read

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw Object.assign(new Error(body.error || body), { body });
  return body;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function selectJob(name) {
  state.job = name;
  for (const button of $("jobs").children) button.setAttribute("aria-selected", button.dataset.job === name);
  const form = state.forms[name];
  $("summary").textContent = form.summary;
  const node = $("form");
  node.replaceChildren();
  for (const field of form.fields) {
    let input;
    if (field.choices) {
      input = el("select", { name: field.name }, el("option", { value: "", textContent: "(default)" }));
      for (const choice of field.choices) input.append(el("option", { value: choice, textContent: choice }));
      input.value = field.default;
    } else if (field.kind === "bool") {
      input = el("input", { type: "checkbox", name: field.name, checked: field.default === "true" });
    } else if (field.name === "prompt" || field.name === "negative" || field.name === "prompts") {
      input = el("textarea", { name: field.name, rows: 2, value: field.default });
    } else {
      input = el("input", { name: field.name, value: field.default, placeholder: field.kind === "schedule" ? "number or 0:(1.0), 10:(1.5)" : "" });
    }
    const label = el("label", { className: "field" }, el("span", { textContent: field.name }), input);
    if (field.kind === "file") {
      const upload = el("input", { type: "file", accept: field.accept, name: `${field.name}-upload` });
      upload.addEventListener("change", () => uploadInto(upload, input));
      label.append(el("span"), upload);
    }
    label.append(el("span", { className: "error", id: `error-${field.name}` }));
    node.append(label);
  }
  node.append(el("button", { type: "submit", id: "submit", textContent: `Run ${name}` }));
}

async function uploadInto(upload, input) {
  const data = new FormData();
  data.append("file", upload.files[0]);
  try {
    const response = await fetch("/api/upload", { method: "POST", body: data });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error);
    input.value = body.path;
  } catch (error) {
    $(`error-${input.name}`).textContent = error.message;
  }
}

function formValues() {
  const values = {};
  for (const field of state.forms[state.job].fields) {
    const input = $("form").elements[field.name];
    const value = field.kind === "bool" ? (input.checked ? "true" : "false") : input.value;
    if (value !== field.default || field.name === "prompt") values[field.name] = value;
  }
  return values;
}

async function submit(event) {
  event?.preventDefault();
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
  $("message").textContent = "";
  try {
    const job = await api("/api/jobs", { method: "POST", body: JSON.stringify({ job: state.job, fields: formValues() }) });
    watch(job.id, 0);
    history.replaceState(null, "", `?job=${job.id}`);
    refreshQueue();
  } catch (error) {
    const field = error.body?.field;
    const target = field && $(`error-${field}`) ? $(`error-${field}`) : $("message");
    target.textContent = error.message;
  }
}

function showProgress(progress, eta) {
  window.studio.progressLog.push(progress);
  $("progress").value = progress;
  $("progress-text").textContent = `${Math.round(progress * 100)} %` + (eta != null ? `, ${eta.toFixed(1)} s left` : "");
}

function watch(id, progress) {
  state.watched = id;
  $("preview").hidden = true;
  showProgress(progress, null);
}

function onEvent(kind, event) {
  const data = JSON.parse(event.data);
  if (kind === "model") $("model").textContent = $("model").textContent.replace(" (loading…)", "");
  if (kind === "state" || kind === "done" || kind === "error") refreshQueue();
  if (kind === "done" || kind === "picture") refreshGallery();
  if (data.job !== state.watched) return;
  if ((kind === "step" || kind === "picture" || kind === "frame") && data.progress != null) showProgress(data.progress, data.eta);
  if (kind === "preview") { $("preview").src = data.image; $("preview").hidden = false; }
  if (kind === "message") $("message").textContent = data.text;
  if (kind === "done") {
    window.studio.doneEvents[data.job] = (window.studio.doneEvents[data.job] || 0) + 1;
    showProgress(1, 0);
    $("message").textContent = "done";
  }
  if (kind === "error") $("message").textContent = data.message;
}

function connect(after) {
  const source = new EventSource(`/api/events?after=${after}`);
  for (const kind of ["state", "step", "picture", "frame", "preview", "message", "done", "error", "model"]) {
    source.addEventListener(kind, (event) => onEvent(kind, event));
  }
}

async function refreshQueue() {
  const jobs = await api("/api/jobs");
  const list = $("queue");
  list.replaceChildren();
  const queued = jobs.filter((job) => job.state === "queued");
  for (const job of jobs.slice(0, 30)) {
    const item = el("li", { textContent: `${job.job} ${job.id}: ${job.state}${job.error ? ` (${job.error})` : ""}` });
    item.dataset.job = job.id;
    item.dataset.state = job.state;
    const act = (label, action, body) => {
      const button = el("button", { type: "button", textContent: label });
      button.addEventListener("click", async () => {
        await api(`/api/jobs/${job.id}/${action}`, { method: "POST", body: JSON.stringify(body || {}) });
        if (action === "resume") { watch(job.id, job.progress); history.replaceState(null, "", `?job=${job.id}`); }
        refreshQueue();
      });
      item.append(button);
    };
    if (job.state === "queued" || job.state === "running") act("cancel", "cancel");
    if (job.state === "queued") {
      const at = queued.indexOf(job);
      if (at > 0) act("up", "move", { before: queued[at - 1].id });
    }
    if (job.state === "interrupted") act("resume", "resume");
    item.addEventListener("dblclick", () => { watch(job.id, job.progress); history.replaceState(null, "", `?job=${job.id}`); });
    list.append(item);
  }
}

async function refreshGallery() {
  const gallery = await api("/api/gallery");
  $("gallery").replaceChildren(...gallery.pictures.slice(0, 200).map((picture) => {
    const image = el("img", { src: `/files/${picture.path}`, alt: picture.path, loading: "lazy" });
    image.dataset.path = picture.path;
    image.addEventListener("click", () => showDetails(picture.path));
    return image;
  }));
  $("videos").replaceChildren(...gallery.videos.map((video) => {
    const figure = el("figure", {}, el("video", { src: `/files/${video.path}`, controls: true, loop: true, muted: true, preload: "metadata" }));
    if (video.sheet) figure.append(el("img", { src: `/files/${video.sheet}`, alt: "contact sheet", width: 240 }));
    figure.append(el("figcaption", { textContent: `${video.path}${video.frames != null ? `, ${video.frames} frames in ${video.run}` : ""}` }));
    return figure;
  }));
  $("runs").replaceChildren(...gallery.runs.map((run) => {
    const button = el("button", { type: "button", textContent: "resume" });
    button.addEventListener("click", async () => {
      const job = await api("/api/runs/resume", { method: "POST", body: JSON.stringify({ path: run.path }) });
      watch(job.id, 0);
      history.replaceState(null, "", `?job=${job.id}`);
      refreshQueue();
    });
    return el("p", { className: "run", textContent: `interrupted: ${run.path} (${run.frames} frames finished) ` }, button);
  }));
}

async function showDetails(path) {
  const info = await api(`/api/info/${path}`);
  state.current = info;
  $("details").hidden = false;
  $("details-image").src = `/files/${path}`;
  $("settings").textContent = info.text;
}

function fill(job, values) {
  selectJob(job);
  const form = $("form");
  for (const [name, value] of Object.entries(values)) {
    const input = form.elements[name];
    if (!input || value == null) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = Array.isArray(value) ? value.join(name === "seeds" ? "," : "|") : String(value);
  }
}

function pictureFields(extra) {
  const recipe = state.current?.recipe || {};
  const keep = ["prompt", "negative", "seeds", "steps", "guidance", "width", "height", "scheduler"];
  return Object.fromEntries([...keep.map((name) => [name, recipe[name]]), ...Object.entries(extra)]);
}

async function main() {
  const forms = await api("/api/forms");
  for (const form of forms) {
    state.forms[form.job] = form;
    const button = el("button", { type: "button", textContent: form.job, role: "tab" });
    button.dataset.job = form.job;
    button.addEventListener("click", () => selectJob(form.job));
    $("jobs").append(button);
  }
  selectJob(forms[0].job);
  $("form").addEventListener("submit", submit);
  $("to-img2img").addEventListener("click", () => fill("img2img", pictureFields({ image: state.current.path })));
  $("to-zoom").addEventListener("click", () => fill("zoom", { prompt: state.current.recipe?.prompt, start: state.current.path }));
  $("more-steps").addEventListener("click", () => {
    const recipe = state.current.recipe || {};
    const job = recipe.job in state.forms ? recipe.job : "txt2img";
    fill(job, { ...pictureFields({}), image: recipe.image, strength: recipe.strength, steps: (Number(recipe.steps) || 25) * 2 });
    submit();
  });
  const status = await api("/api/status");
  $("model").textContent = `model: ${status.model}${status.loaded ? "" : " (loading…)"}`;
  let after = status.last_event_id;
  if (state.watched) {
    try {
      const job = await api(`/api/jobs/${state.watched}`);
      after = job.last_event_id;
      watch(job.id, job.progress);
      if (job.preview) { $("preview").src = job.preview; $("preview").hidden = false; }
      if (job.state === "done") $("message").textContent = "done";
    } catch { state.watched = null; }
  }
  connect(after);
  refreshQueue();
  refreshGallery();
}

main();
