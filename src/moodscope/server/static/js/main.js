// The moodscope page: the library map, analysis of a dropped file, journeys and playlists.
// Everything comes from this server's /api/v1; the axes and colours come from /api/v1/health.

import { apiURL, getJSON, postJSON, uploadForAnalysis } from "./api.js";
import { MoodMap } from "./map.js";
import { renderTimeline, summaryText } from "./timeline.js";

const $ = (selector) => document.querySelector(selector);

/** Show a message in the bar at the top (kind: error, info); an empty message hides it. */
function show(message, kind = "error") {
  const bar = $("#message");
  bar.textContent = message;
  bar.className = kind;
  bar.hidden = !message;
}

function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function trackName(track) {
  return track.artist ? `${track.artist} – ${track.title}` : track.title;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the library -------------------------------------------------------------------------------

function setupLibrary(config) {
  const panel = $("#track-panel");
  const audio = $("#track-audio");
  const mode = new URLSearchParams(window.location.search).get("map"); // ?map=svg|canvas: force one
  const map = new MoodMap($("#map"), $("#map-canvas"), $("#tooltip"), config, (id) => showTrack(id), mode);
  window.moodscope = { map }; // for the console and the browser tests (where a track's dot is drawn)
  const search = $("#map-search");
  const filters = $("#quadrant-filter");
  for (const [q, info] of Object.entries(config.quadrants)) {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: true, value: q });
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    swatch.style.setProperty("background", info.colour);
    label.append(box, swatch, ` ${q} ${info.mood}`);
    filters.append(label);
  }

  function update() {
    const hidden = new Set([...filters.querySelectorAll("input:not(:checked)")].map((box) => box.value));
    const shown = map.filter(hidden, search.value);
    const total = map.n;
    $("#map-count").textContent = total ? `${shown} of ${total} tracks shown` : "";
  }
  filters.addEventListener("change", update);
  search.addEventListener("input", update);
  $("#zoom-in").addEventListener("click", () => map.zoomBy(1.6));
  $("#zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.6));
  $("#zoom-reset").addEventListener("click", () => map.reset());

  async function load() {
    let points;
    try {
      points = await getJSON("/map");
    } catch (error) {
      show(`Cannot load the library: ${error.message}`);
      return;
    }
    const empty = points.id.length === 0;
    $("#library-empty").hidden = !empty;
    $("#map-area").hidden = empty;
    map.setPoints(points);
    update();
  }

  async function showTrack(id) {
    let detail;
    try {
      detail = await getJSON(`/tracks/${id}`);
    } catch (error) {
      show(`Cannot show track ${id}: ${error.message}`);
      return;
    }
    const t = detail.track;
    map.select(id);
    panel.hidden = false;
    panel.dataset.id = id;
    $("#track-title").textContent = trackName(t);
    $("#track-meta").textContent = [t.album, clock(t.duration), `model ${t.model}`].filter(Boolean).join(" · ");
    $("#track-summary").textContent = summaryText(detail.summary, config);
    renderTimeline($("#track-timeline"), detail.timeline, config, audio);
    audio.src = apiURL(`/tracks/${id}/audio`);
    const similar = $("#similar-list");
    similar.replaceChildren();
    if (t.uncertain) {  // mostly silence, noise or speech: no mood to match (the API refuses it as a seed)
      const item = document.createElement("li");
      item.textContent = "none: this track is uncertain (mostly silence, noise or speech), it has no mood to match";
      similar.append(item);
      return;
    }
    try {
      const found = await getJSON(`/similar/${id}`, { n: 5 });
      for (const s of found.tracks) {
        const item = document.createElement("li");
        const link = Object.assign(document.createElement("button"), { type: "button", className: "link" });
        link.textContent = `${trackName(s)} (${s.quadrant} ${config.quadrants[s.quadrant].mood})`;
        link.addEventListener("click", () => showTrack(s.id));
        item.append(link);
        similar.append(item);
      }
    } catch (error) {
      show(`Cannot find similar tracks: ${error.message}`);
    }
  }

  if (config.scan.enabled) {
    const form = $("#scan-form");
    form.hidden = false;
    form.folder.placeholder = config.scan.roots[0];
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = $("#scan-status");
      try {
        let job = await postJSON("/scan", { folder: form.folder.value || null });
        while (job.state === "queued" || job.state === "running") {
          status.textContent = `Scanning ${job.folder}: ${job.stage || "starting"} ${job.done}/${job.total}`;
          await sleep(1000);
          job = await getJSON(`/jobs/${job.id}`);
        }
        if (job.state === "failed") throw new Error(job.error);
        const failed = Object.keys(job.failures).length;
        status.textContent = `Scanned ${job.folder}: ${job.result.analysed} analysed, ${job.result.unchanged} unchanged` +
          (failed ? `, ${failed} failed (${Object.values(job.failures)[0]})` : "");
        await load();
      } catch (error) {
        status.textContent = "";
        show(`Scan failed: ${error.message}`);
      }
    });
  }
  return load();
}

// ---- analysing a file ----------------------------------------------------------------------------

function setupAnalyse(config) {
  const drop = $("#drop");
  const input = $("#file");
  const progress = $("#upload-progress");
  const state = $("#upload-state");
  const result = $("#analysis");
  const audio = $("#analysis-audio");
  let objectURL = null;

  async function analyse(file) {
    if (!file) return;
    show("");
    const limit = config.analysis.max_upload_bytes;
    if (file.size > limit) {
      show(`Could not analyse ${file.name}: it is larger than this server accepts (${Math.round(limit / 2 ** 20)} MiB)`);
      return;
    }
    progress.hidden = false;
    progress.value = 0;
    state.textContent = `Uploading ${file.name}…`;
    try {
      let analysis = null;
      for (let attempt = 1; analysis === null; attempt++) {
        try {
          analysis = await uploadForAnalysis(file, {
            onProgress: (fraction) => {
              if (fraction === null) {
                progress.removeAttribute("value"); // indeterminate while the server analyses
                state.textContent = `Analysing ${file.name}…`;
              } else {
                progress.value = fraction;
              }
            },
          });
        } catch (error) {
          if (error.status !== 503 || attempt >= 6) throw error;
          const seconds = Number(error.retryAfter) || 2;
          state.textContent = `The server is busy; trying again in ${seconds} s…`;
          await sleep(seconds * 1000);
        }
      }
      result.hidden = false;
      $("#analysis-title").textContent = analysis.track;
      $("#analysis-summary").textContent = summaryText(analysis.summary, config);
      $("#analysis-meta").textContent =
        `${clock(analysis.duration)} · ${analysis.segments.length} segments of ${config.segment_seconds} s · model ${analysis.model}`;
      if (objectURL) URL.revokeObjectURL(objectURL);
      objectURL = URL.createObjectURL(file);
      audio.src = objectURL;
      renderTimeline($("#analysis-timeline"), analysis.segments, config, audio);
      state.textContent = "";
    } catch (error) {
      state.textContent = "";
      show(`Could not analyse ${file.name}: ${error.message}`);
    } finally {
      progress.hidden = true;
      input.value = "";
    }
  }

  input.addEventListener("change", () => analyse(input.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    analyse(event.dataTransfer.files[0]);
  });
}

// ---- journeys and playlists ------------------------------------------------------------------------

function setupJourney(config) {
  const form = $("#journey-form");
  const list = $("#journey-list");
  const audio = $("#journey-audio");
  const words = $("#mood-words");
  for (const [q, info] of Object.entries(config.quadrants)) {
    for (const word of [q, ...info.mood.split("/")]) words.append(Object.assign(document.createElement("option"), { value: word }));
  }
  let tracks = [];
  let playing = -1;

  const syncKind = () => {
    const journey = form.kind.value === "journey";
    $("#from-field").hidden = !journey;
    form.from.required = journey;
    $("#to-label").textContent = journey ? "To" : "Mood";
  };
  form.kind.addEventListener("change", syncKind);
  syncKind();

  function play(index) {
    if (index < 0 || index >= tracks.length) {
      playing = -1;
      return;
    }
    playing = index;
    for (const [i, item] of [...list.children].entries()) item.classList.toggle("playing", i === index);
    audio.src = apiURL(`/tracks/${tracks[index].id}/audio`);
    audio.play().catch(() => {}); // a browser may wait for a click before playing
  }
  audio.addEventListener("ended", () => play(playing + 1));
  $("#play-all").addEventListener("click", () => play(0));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("");
    const journey = form.kind.value === "journey";
    const path = journey ? "/journey" : "/playlist";
    const params = journey
      ? { from: form.from.value.trim(), to: form.to.value.trim(), n: form.n.value }
      : { mood: form.to.value.trim(), n: form.n.value };
    let data;
    try {
      data = await getJSON(path, params);
    } catch (error) {
      show(`Cannot build the ${journey ? "journey" : "playlist"}: ${error.message}`);
      return;
    }
    tracks = data.tracks;
    list.replaceChildren();
    $("#journey-name").textContent = data.playlist;
    $("#journey-result").hidden = false;
    $("#journey-controls").hidden = tracks.length === 0;
    if (tracks.length === 0) {
      show("No tracks: the library is empty (or none is that confident).", "info");
      return;
    }
    for (const [i, t] of tracks.entries()) {
      const item = document.createElement("li");
      const button = Object.assign(document.createElement("button"), { type: "button", className: "link" });
      button.textContent = trackName(t);
      button.addEventListener("click", () => play(i));
      const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
      swatch.style.setProperty("background", config.quadrants[t.quadrant].colour);
      const mood = t.uncertain ? "uncertain (unlike music)" : `${t.quadrant} ${config.quadrants[t.quadrant].mood}`;
      item.append(swatch, button, ` ${mood} · ${clock(t.duration)}`);
      list.append(item);
    }
    $("#m3u-link").href = apiURL(path, { ...params, format: "m3u" });
    $("#xspf-link").href = apiURL(path, { ...params, format: "xspf" });
  });
}

// ---- start -----------------------------------------------------------------------------------------

async function start() {
  let config;
  try {
    config = await getJSON("/health");
  } catch (error) {
    show(`moodscope: ${error.message}`);
    return;
  }
  $("#library-name").textContent = config.library;
  setupAnalyse(config);
  setupJourney(config);
  await setupLibrary(config);
  document.body.dataset.ready = "true";
}

start();
