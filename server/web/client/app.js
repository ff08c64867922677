// The web app: a header with the viewer's sign-in, and one view per path, drawn from the JSON APIs.
//   /                                   storefront (views/storefront.js)
//   /series/{series}                    a series, its episodes and its paywall (views/series.js)
//   /series/{series}/episodes/{episode} the player (views/episode.js; its libraries load on that page only)
// (The creator studio, /studio, is a bundle of its own: studio.js.)
import { html, nothing, render } from "lit-html";
import { api } from "./api.js";
import { config } from "./config.js";
import { describe } from "./messages.js";
import { startRouter } from "./router.js";
import { knownViewers, listenToHost, session, signInLocally } from "./session.js";
import { storefront } from "./views/storefront.js";
import { seriesPage } from "./views/series.js";

const header = document.getElementById("site-header");
let signInError = "";

const routes = [
  [/^\/$/, () => storefront],
  [/^\/series\/([^/]+)$/, () => seriesPage],
  [/^\/series\/([^/]+)\/episodes\/([^/]+)$/, async () => (await import("./views/episode.js")).episodePage],
];
const router = startRouter(routes);

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

session.addEventListener("change", () => { drawHeader(); router.route(); });
listenToHost();
drawHeader();
router.route();
