// The creator studio: a header with the creator's sign-in, and one view per path, drawn from the JSON APIs.
//   /studio                   eligibility, the creator's series, a new series (views/studio-home.js)
//   /studio/series/{series}   one series: details, uploads, episodes, sales (views/studio-series.js)
// A bundle of its own (tus-js-client loads only here), with a session of its own: a creator's account
// token, kept apart from the viewer's in the same tab.
import { html, nothing, render } from "lit-html";
import { api } from "./api.js";
import { config } from "./config.js";
import { describe } from "./messages.js";
import { startRouter } from "./router.js";
import { KNOWN_CREATORS, Session, knownIds, listenToHost, signInLocally } from "./session.js";
import { studioHome } from "./views/studio-home.js";
import { studioSeries } from "./views/studio-series.js";

export const creator = new Session("series.studio-session", KNOWN_CREATORS);
const header = document.getElementById("site-header");
let signInError = "";

const routes = [
  [/^\/studio\/?$/, () => (view) => studioHome(view, creator)],
  [/^\/studio\/series\/([^/]+)$/, () => (view) => studioSeries(view, creator)],
];
const router = startRouter(routes, { home: ["/studio", "Back to the studio"], site: "Creator studio" });

function drawHeader() {
  render(html`
    <a class="brand" href="/studio">Creator studio</a>
    <div class="account">
      ${creator.isSignedIn ? html`
        <span class="who">Creator <strong>${creator.viewerId}</strong>${creator.via === "local" ? html` <span class="badge">local</span>` : nothing}</span>
        <button type="button" class="link-button" @click=${() => creator.clear()}>Sign out</button>`
      : config.local_sign_in ? html`
        <form class="sign-in" @submit=${submitSignIn} aria-label="Sign in as a local creator">
          <label for="creator-id">Creator</label>
          <input id="creator-id" name="creator" list="known-creators" autocomplete="off" required
                 pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}" placeholder="pick or type an id"
                 title="letters, digits, - and _">
          <datalist id="known-creators">${[...new Set([...knownIds(KNOWN_CREATORS), "demo-creator"])].map((id) => html`<option value=${id}></option>`)}</datalist>
          <button type="submit">Sign in</button>
        </form>`
      : html`<span class="who">${config.host_origins?.length ? "Waiting for your app to sign you in…" : "Open the studio from the app where you have your creator account."}</span>`}
    </div>
    <p class="header-notice" role="status">${signInError || creator.notice || ""}</p>
    <div id="announcer" class="visually-hidden" aria-live="polite"></div>`, header);
}

async function submitSignIn(event) {
  event.preventDefault();
  const creatorId = new FormData(event.target).get("creator").trim();
  try {
    signInError = "";
    await signInLocally(creatorId, api, { role: "creator", target: creator });
  } catch (error) {
    signInError = describe(error);
    drawHeader();
  }
}

creator.addEventListener("change", () => { drawHeader(); router.route(); });
listenToHost(creator);
drawHeader();
router.route();
