// Who is watching: the viewer's account token, from the local sign-in (local set-ups) or from the host
// application (production), which hands it over by postMessage; never in a page URL.
//
// Kept in sessionStorage: it survives a reload of this tab but not the tab, is not shared with other
// tabs, and is gone when the tab closes. Not localStorage, which would keep a bearer token on disk for
// as long as it lives (days) for any script of this origin to read later; not a cookie, which every
// request would carry (and CSRF would follow). Playback tokens are kept in memory only.
import { config } from "./config.js";

const KNOWN_VIEWERS = "series.local-viewers";     // viewer ids signed in here before (not secrets)
export const KNOWN_CREATORS = "series.local-creators";

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** One signed-in account in this tab: the viewer's (the web app) or the creator's (the studio), kept apart. */
export class Session extends EventTarget {
  constructor(storageKey, knownKey = KNOWN_VIEWERS) {
    super();
    this.storageKey = storageKey;
    this.knownKey = knownKey;      // where ids signed in locally are remembered
    this.token = null;
    this.viewerId = null;
    this.expiresAt = 0;
    this.via = null;          // "local" | "host"
    this.notice = null;       // a message for the header (why the viewer was signed out)
    try {
      const saved = JSON.parse(sessionStorage.getItem(storageKey) || "null");
      if (saved && saved.expiresAt * 1000 > Date.now()) Object.assign(this, saved);
    } catch {
      sessionStorage.removeItem(storageKey);
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
    sessionStorage.setItem(this.storageKey, JSON.stringify({ token, viewerId: this.viewerId, expiresAt: this.expiresAt, via }));
    if (via === "local") remember(this.knownKey, this.viewerId);
    this.dispatchEvent(new Event("change"));
  }

  clear(notice = null) {
    this.token = null;
    this.viewerId = null;
    this.expiresAt = 0;
    this.via = null;
    this.notice = notice;
    sessionStorage.removeItem(this.storageKey);
    this.dispatchEvent(new Event("change"));
  }
}

export const session = new Session("series.session");

export function knownViewers() {
  return knownIds(KNOWN_VIEWERS);
}

/** Ids signed in locally before, newest first (a datalist's suggestions). */
export function knownIds(knownKey) {
  try {
    const known = JSON.parse(localStorage.getItem(knownKey) || "[]");
    return Array.isArray(known) ? known.filter((id) => typeof id === "string").slice(0, 20) : [];
  } catch {
    return [];
  }
}

function remember(knownKey, accountId) {
  const known = [accountId, ...knownIds(knownKey).filter((id) => id !== accountId)].slice(0, 20);
  localStorage.setItem(knownKey, JSON.stringify(known));
}

/** The local set-up's sign-in: POST /v1/local/sign-in for a viewer id (any; a new one is created), or with
 * `role: "creator"` a creator id into the studio's session. */
export async function signInLocally(accountId, api, { role = "viewer", target = session } = {}) {
  const body = role === "creator" ? { creator_id: accountId } : { viewer_id: accountId };
  const answer = await api("/v1/local/sign-in", { method: "POST", body, token: null });
  target.set(answer.token, "local", answer.expires_at);
}

/**
 * Production: the host application that embeds these pages (an iframe) or opened them (a popup) hands
 * over the viewer's account token it minted (README: Sign-in). Only origins in SERIES_WEB_HOST_ORIGINS
 * are listened to, and our "ready" message is addressed to those origins alone.
 *   page -> host: {type: "series:ready"}
 *   host -> page: {type: "series:account-token", token}  or  {type: "series:sign-out"}
 */
export function listenToHost(target = session) {
  const origins = config.host_origins || [];
  if (!origins.length) return;
  window.addEventListener("message", (event) => {
    if (!origins.includes(event.origin) || typeof event.data !== "object" || event.data === null) return;
    if (event.data.type === "series:account-token" && typeof event.data.token === "string") {
      target.set(event.data.token, "host");
    } else if (event.data.type === "series:sign-out") {
      target.clear();
    }
  });
  const host = window.parent !== window ? window.parent : window.opener;
  if (host) for (const origin of origins) host.postMessage({ type: "series:ready" }, origin);
}
