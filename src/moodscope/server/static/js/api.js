// Talking to the moodscope API: JSON in, readable errors out.

export const API = "/api/v1";

/** An error to show the user: `message` says what happened, `status` is the HTTP status (0: no server). */
export class ApiError extends Error {
  constructor(message, status = 0, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return JSON.stringify(detail);
}

async function errorFrom(response) {
  let text = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail !== undefined) text = detailText(body.detail);
  } catch {
    /* not JSON: keep the status line */
  }
  if (response.status >= 500 && response.status !== 503) text = `the server failed (${text})`;
  return new ApiError(text, response.status, response.headers.get("Retry-After"));
}

/** GET a JSON endpoint under /api/v1 with query parameters. */
export async function getJSON(path, params = {}) {
  const url = new URL(API + path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new ApiError("cannot reach the moodscope server: is it still running?");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** POST a JSON body. */
export async function postJSON(path, body) {
  let response;
  try {
    response = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError("cannot reach the moodscope server: is it still running?");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** The URL of an endpoint with its parameters (for links: audio, M3U downloads). */
export function apiURL(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== "")).toString();
  return API + path + (query ? `?${query}` : "");
}

/**
 * Upload one file to POST /analyze. `onProgress(fraction)` follows the upload (null once it is sent
 * and the server is analysing). Resolves with the analysis; rejects with an ApiError (503 carries
 * retryAfter in seconds).
 */
export function uploadForAnalysis(file, { model = null, onProgress = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiURL("/analyze", { model }));
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => onProgress(e.lengthComputable ? e.loaded / e.total : null);
    xhr.upload.onload = () => onProgress(null);
    xhr.onerror = () => reject(new ApiError("cannot reach the moodscope server: is it still running?"));
    xhr.onload = () => {
      if (xhr.status === 200) {
        resolve(xhr.response);
        return;
      }
      const body = xhr.response;
      let text = body && body.detail !== undefined ? detailText(body.detail) : `${xhr.status} ${xhr.statusText}`;
      if (xhr.status >= 500 && xhr.status !== 503) text = `the server failed (${text})`;
      reject(new ApiError(text, xhr.status, xhr.getResponseHeader("Retry-After")));
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
