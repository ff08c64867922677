// The service's JSON APIs, called from this origin. Every refusal is problem+json with a stable `code`:
// ApiError carries it, so a view can say what happened in words (messages.js).
import { session as viewerSession } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** fetch(path) with the signed-in account's token (the viewer's, or `session`'s, or `token`), JSON in and out. */
export async function api(path, { method = "GET", body, token, signal, session = viewerSession } = {}) {
  const bearer = token ?? session.token;
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "The service cannot be reached; check the connection and try again.");
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (response.ok) return data;
  const error = new ApiError(response.status, data?.code || `http_${response.status}`, data?.detail || response.statusText);
  if (response.status === 401 && token === undefined && bearer && bearer === session.token) {
    // the sign-in expired or was replaced: sign out, say so, and ask again as a guest
    session.clear("Your sign-in has expired; sign in again.");
    return api(path, { method, body, signal, session });
  }
  throw error;
}

/** The path and query of a URL the API gave (absolute on SERIES_PUBLIC_URL), on this page's origin. */
export function onThisOrigin(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}
