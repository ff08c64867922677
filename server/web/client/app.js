// The web app: a header with the viewer's sign-in, and one view per path, drawn from the JSON APIs.
//   /                                   storefront (views/storefront.js)
//   /series/{series}                    a series, its episodes and its paywall (views/series.js)
//   /series/{series}/episodes/{episode} the player (views/episode.js; its libraries load on that page only)
import { html, nothing, render } from "lit-html";
import { api } from "./api.js";
import { config } from "./config.js";
import { describe } from "./messages.js";
import { knownViewers, listenToHost, session, signInLocally } from "./session.js";
import { storefront } from "./views/storefront.js";
import { seriesPage } from "./views/series.js";

const main = document.getElementById("main");
const header = document.getElementById("site-header");
main.replaceChildren();          // the shell's "Loading…": lit-html draws beside what a container holds
let current = null;          // the view on screen: {leave()} when it has something to stop (the player)
let signInError = "";

const routes = [
  [/^\/$/, () => storefront],
  [/^\/series\/([^/]+)$/, () => seriesPage],
  [/^\/series\/([^/]+)\/episodes\/([^/]+)$/, async () => (await import("./views/episode.js")).episodePage],
];

/** What a view gets: where to draw, how to set the title, how to navigate. */
function context(params) {
  return {
    params: params.map(decodeURIComponent),
    query: new URLSearchParams(location.search),
    show(template) { render(template, main); },
    title(text) { document.title = `${text} · Premium series`; },
    navigate,
    announce,
  };
}

let routing = 0;              // the latest route(): a view an earlier one was still loading is left at once

async function route() {
  const mine = ++routing;
  current?.leave?.();
  current = null;
  for (const [pattern, load] of routes) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    try {
      const view = await load();
      const shown = await view(context(match.slice(1)));
      // a sign-in during the page's first load routes again: the stale view must not keep a player
      // (it would be a second playback session of the viewer's)
      if (mine !== routing) return shown?.leave?.();
      current = shown;
    } catch (error) {
      render(html`<section class="notice" role="alert"><h1 tabindex="-1">Something went wrong</h1>
        <p>${error.code ? describe(error) : String(error.message || error)}</p>
        <p><a href="/">Back to the storefront</a></p></section>`, main);
    }
    focusHeading();
    return;
  }
  render(html`<section class="notice"><h1 tabindex="-1">Page not found</h1><p><a href="/">Back to the storefront</a></p></section>`, main);
  focusHeading();
}

function focusHeading() {
  // a screen reader hears the new page's title after a client-side navigation, as after a page load
  const heading = main.querySelector("h1");
  if (heading && document.activeElement?.closest?.("#site-header") == null) heading.focus({ preventScroll: true });
}

export function navigate(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", path);
  window.scrollTo(0, 0);
  route();
}

function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// Links inside the app navigate without a reload; other links (and modified clicks) behave as links do.
document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || link.target || link.hasAttribute("download")) return;
  if (!routes.some(([pattern]) => pattern.test(url.pathname))) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", route);

function drawHeader() {
  const signedIn = session.isSignedIn;
  render(html`
    <a class="brand" href="/">Premium series</a>
    <div class="account">
      ${signedIn ? html`
        <span class="who">Signed in as <strong>${session.viewerId}</strong>${session.via === "local" ? html` <span class="badge">local</span>` : nothing}</span>
        <button type="button" class="link-button" @click=${() => session.clear()}>Sign out</button>`
      : config.local_sign_in ? html`
        <form class="sign-in" @submit=${submitSignIn} aria-label="Sign in as a local viewer">
          <label for="viewer-id">Viewer</label>
          <input id="viewer-id" name="viewer" list="known-viewers" autocomplete="off" required
                 pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}" placeholder="pick or type an id"
                 title="letters, digits, - and _">
          <datalist id="known-viewers">${[...new Set([...knownViewers(), "demo-viewer", "guest-viewer"])].map((id) => html`<option value=${id}></option>`)}</datalist>
          <button type="submit">Sign in</button>
        </form>`
      : html`<span class="who">${config.host_origins?.length ? "Waiting for your app to sign you in…" : "Open this page from the app where you have your account."}</span>`}
    </div>
    <p class="header-notice" role="status">${signInError || session.notice || ""}</p>
    <div id="announcer" class="visually-hidden" aria-live="polite"></div>`, header);
}

async function submitSignIn(event) {
  event.preventDefault();
  const viewerId = new FormData(event.target).get("viewer").trim();
  try {
    signInError = "";
    await signInLocally(viewerId, api);
  } catch (error) {
    signInError = describe(error);
    drawHeader();
  }
}

session.addEventListener("change", () => { drawHeader(); route(); });
listenToHost();
drawHeader();
route();
