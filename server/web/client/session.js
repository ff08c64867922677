// Who is watching: the viewer's account token, from the local sign-in (local set-ups) or from the host
// application (production), which hands it over by postMessage; never in a page URL.
//
// Kept in sessionStorage: it survives a reload of this tab but not the tab, is not shared with other
// tabs, and is gone when the tab closes. Not localStorage, which would keep a bearer token on disk for
// as long as it lives (days) for any script of this origin to read later; not a cookie, which every
// request would carry (and CSRF would follow). Playback tokens are kept in memory only.
import { config } from "./config.js";

const KEY = "series.session";
const KNOWN_VIEWERS = "series.local-viewers";     // viewer ids signed in here before (not secrets)

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

class Session extends EventTarget {
  constructor() {
    super();
    this.token = null;
    this.viewerId = null;
    this.expiresAt = 0;
    this.via = null;          // "local" | "host"
    this.notice = null;       // a message for the header (why the viewer was signed out)
    try {
      const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (saved && saved.expiresAt * 1000 > Date.now()) Object.assign(this, saved);
    } catch {
      sessionStorage.removeItem(KEY);
    }
  }

  get isSignedIn() {
    return Boolean(this.token) && this.expiresAt * 1000 > Date.now();
  }

  set(token, via, expiresAt) {
    const claims = claimsOf(token);
    this.token = token;
    this.viewerId = claims.sub || "viewer";
    this.expiresAt = expiresAt || claims.exp || 0;
    this.via = via;
    this.notice = null;
    sessionStorage.setItem(KEY, JSON.stringify({ token, viewerId: this.viewerId, expiresAt: this.expiresAt, via }));
    if (via === "local") rememberViewer(this.viewerId);
    this.dispatchEvent(new Event("change"));
  }

  clear(notice = null) {
    this.token = null;
    this.viewerId = null;
    this.expiresAt = 0;
    this.via = null;
    this.notice = notice;
    sessionStorage.removeItem(KEY);
    this.dispatchEvent(new Event("change"));
  }
}

export const session = new Session();

export function knownViewers() {
  try {
    const known = JSON.parse(localStorage.getItem(KNOWN_VIEWERS) || "[]");
    return Array.isArray(known) ? known.filter((id) => typeof id === "string").slice(0, 20) : [];
  } catch {
    return [];
  }
}

function rememberViewer(viewerId) {
  const known = [viewerId, ...knownViewers().filter((id) => id !== viewerId)].slice(0, 20);
  localStorage.setItem(KNOWN_VIEWERS, JSON.stringify(known));
}

/** The local set-up's sign-in: POST /v1/local/sign-in for a viewer id (any; a new one is created). */
export async function signInLocally(viewerId, api) {
  const answer = await api("/v1/local/sign-in", { method: "POST", body: { viewer_id: viewerId }, token: null });
  session.set(answer.token, "local", answer.expires_at);
}

/**
 * Production: the host application that embeds these pages (an iframe) or opened them (a popup) hands
 * over the viewer's account token it minted (README: Sign-in). Only origins in SERIES_WEB_HOST_ORIGINS
 * are listened to, and our "ready" message is addressed to those origins alone.
 *   page -> host: {type: "series:ready"}
 *   host -> page: {type: "series:account-token", token}  or  {type: "series:sign-out"}
 */
export function listenToHost() {
  const origins = config.host_origins || [];
  if (!origins.length) return;
  window.addEventListener("message", (event) => {
    if (!origins.includes(event.origin) || typeof event.data !== "object" || event.data === null) return;
    if (event.data.type === "series:account-token" && typeof event.data.token === "string") {
      session.set(event.data.token, "host");
    } else if (event.data.type === "series:sign-out") {
      session.clear();
    }
  });
  const host = window.parent !== window ? window.parent : window.opener;
  if (host) for (const origin of origins) host.postMessage({ type: "series:ready" }, origin);
}
