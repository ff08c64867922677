// The studio's home: may this creator sell (every unmet rule, with what to do about it, or the way to
// apply with premium content sold elsewhere), their series, and a new series.
import { html, nothing } from "lit-html";
import { api } from "../api.js";
import { plural, price } from "../format.js";
import { describe } from "../messages.js";
import { eligibilitySummary, ruleAdvice } from "../studio-messages.js";
import { badge, loading, poster } from "./common.js";

const CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK"];
export const MIN_PRICE_CENTS = 100, MAX_PRICE_CENTS = 19000;

/** "Knots at sea!" -> "knots-at-sea": a series id proposed from its title (the creator may change it). */
export function slug(title) {
  return title.normalize("NFKD").replace(/[^\w\s-]/g, "").trim().toLowerCase().replace(/[\s_]+/g, "-")
    .replace(/-+/g, "-").replace(/^-|-$/g, "").slice(0, 48);
}

/** "4.99" -> 499, or null when it is not a price between $1 and $190. */
export function priceCents(text) {
  const value = Number(String(text).replace(",", "."));
  if (!Number.isFinite(value)) return null;
  const cents = Math.round(value * 100);
  return cents >= MIN_PRICE_CENTS && cents <= MAX_PRICE_CENTS ? cents : null;
}

export function currencyOptions(selected) {
  return CURRENCIES.map((code) => html`<option value=${code} ?selected=${code === selected}>${code}</option>`);
}

export async function studioHome(view, creator) {
  view.title("Studio");
  if (!creator.isSignedIn) {
    view.show(html`<section class="studio-welcome" aria-labelledby="studio-title">
      <h1 id="studio-title" tabindex="-1">Creator studio</h1>
      <p>Sell a series of episodes to your viewers: upload the episodes, set a price, follow your sales.</p>
      <p class="notice">Sign in as a creator to begin (at the top of the page).</p></section>`);
    return null;
  }
  view.show(loading("Loading your studio…"));
  const me = encodeURIComponent(creator.viewerId);
  const call = (path, options = {}) => api(path, { ...options, session: creator });
  let [status, page] = await Promise.all([call(`/v1/creators/${me}/eligibility`),
    call(`/v1/series?creator_id=${me}&limit=50`)]);
  let applyError = "", createError = "", busy = false;
  let draft = { title: "", series_id: "", description: "", price: "4.99", currency: "USD", publish: true };
  let idEdited = false;

  const draw = () => view.show(html`
    <section class="studio-home" aria-labelledby="studio-title">
      <h1 id="studio-title" tabindex="-1">Your studio</h1>
      ${eligibilityPanel()}
      <section class="panel" aria-labelledby="my-series">
        <h2 id="my-series">Your series</h2>
        ${page.series.length === 0 ? html`<p class="notice">No series yet.</p>` : html`
        <ul class="studio-series-list">
          ${page.series.map((series) => html`
            <li class="studio-series-item">
              <a href=${`/studio/series/${encodeURIComponent(series.series_id)}`}>
                ${poster(series.cover?.poster_url, series.title)}
                <span class="title">${series.title}</span>
              </a>
              <span class="meta">${badge(series.status, series.status === "published" ? "owned" : "")}
                <span>${price(series.price_cents, series.currency)}</span>
                <span>${plural(series.episode_count, "episode")}</span></span>
            </li>`)}
        </ul>`}
      </section>
      ${status.may_publish ? createForm() : nothing}
    </section>`);

  const eligibilityPanel = () => {
    const [headline, sentence] = eligibilitySummary(status);
    const onlyFollowers = status.status === "ineligible" && status.unmet?.length === 1 && status.unmet[0].code === "too_few_followers";
    return html`
      <section class=${`panel eligibility ${status.may_publish ? "ok" : "blocked"}`} aria-labelledby="eligibility-title"
               data-status=${status.status}>
        <h2 id="eligibility-title">${headline}</h2>
        <p>${sentence}</p>
        ${status.unmet?.length && !status.may_publish ? html`
          <ul class="unmet-rules">
            ${status.unmet.map((rule) => html`
              <li class="unmet-rule" data-code=${rule.code}>
                <strong>${rule.message}</strong>
                <span class="advice">${ruleAdvice(rule.code, { mayApply: onlyFollowers })}</span>
              </li>`)}
          </ul>` : nothing}
        ${onlyFollowers ? applyForm() : nothing}
      </section>`;
  };

  const applyForm = () => html`
    <form class="apply" @submit=${apply} aria-describedby="apply-help">
      <h3>Apply with premium content you sell elsewhere</h3>
      <p id="apply-help">Fewer than 10,000 followers is the only rule you miss: link to premium content you already
        sell (a course, a paid channel), and a person will review it.</p>
      <label for="premium-url">Link to your premium content</label>
      <input id="premium-url" name="premium_content_url" type="url" required maxlength="2048" placeholder="https://">
      <button type="submit" ?disabled=${busy}>Apply</button>
      <p class="notice error" role="alert">${applyError}</p>
    </form>`;

  const createForm = () => html`
    <section class="panel" aria-labelledby="new-series">
      <h2 id="new-series">New series</h2>
      <form class="series-form" @submit=${create} novalidate>
        <div class="field">
          <label for="series-title">Title</label>
          <input id="series-title" name="title" required maxlength="200" .value=${draft.title}
                 @input=${(e) => { draft.title = e.target.value; if (!idEdited) draft.series_id = slug(draft.title); draw(); }}>
        </div>
        <div class="field">
          <label for="series-id">Address</label>
          <input id="series-id" name="series_id" required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}"
                 aria-describedby="series-id-help" .value=${draft.series_id}
                 @input=${(e) => { draft.series_id = e.target.value; idEdited = true; }}>
          <p id="series-id-help" class="help">Part of the series' link: letters, digits, - and _. It cannot change later.</p>
        </div>
        <div class="field">
          <label for="series-description">Description</label>
          <textarea id="series-description" name="description" maxlength="5000" rows="3" .value=${draft.description}
                    @input=${(e) => { draft.description = e.target.value; }}></textarea>
        </div>
        <div class="field price-field">
          <label for="series-price">Price</label>
          <input id="series-price" name="price" type="number" inputmode="decimal" min="1" max="190" step="0.01" required
                 aria-describedby="price-help" .value=${draft.price} @input=${(e) => { draft.price = e.target.value; }}>
          <label for="series-currency" class="visually-hidden">Currency</label>
          <select id="series-currency" name="currency" @change=${(e) => { draft.currency = e.target.value; }}>${currencyOptions(draft.currency)}</select>
          <p id="price-help" class="help">From 1 to 190; buyers pay once for every episode, those added later too.</p>
        </div>
        <div class="field check">
          <input id="series-publish" type="checkbox" .checked=${draft.publish} @change=${(e) => { draft.publish = e.target.checked; }}>
          <label for="series-publish">Put it on sale at once (otherwise it stays a draft only you see)</label>
        </div>
        <section class="poster-slot" aria-labelledby="poster-title">
          <h3 id="poster-title">Poster</h3>
          <p class="help">Posters arrive with the pictures API; until then viewers see a lettered tile.</p>
        </section>
        <button type="submit" ?disabled=${busy}>${busy ? "Creating…" : "Create series"}</button>
        <p class="notice error" role="alert">${createError}</p>
      </form>
    </section>`;

  async function apply(event) {
    event.preventDefault();
    busy = true;
    applyError = "";
    draw();
    try {
      const url = new FormData(event.target).get("premium_content_url").trim();
      status = await call(`/v1/creators/${me}/application`, { method: "POST", body: { premium_content_url: url } });
      view.announce("Application sent.");
    } catch (error) {
      applyError = describe(error);
    }
    busy = false;
    draw();
  }

  async function create(event) {
    event.preventDefault();
    const cents = priceCents(draft.price);
    createError = !draft.title.trim() ? "Give the series a title."
      : !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(draft.series_id) ? "The address takes letters, digits, - and _ (up to 64), starting with a letter or digit."
      : cents === null ? "The price must be between 1 and 190." : "";
    if (createError) {
      draw();
      document.querySelector(".series-form [role=alert]")?.focus?.();
      return;
    }
    busy = true;
    draw();
    try {
      const series = await call("/v1/series", { method: "POST", body: {
        series_id: draft.series_id, title: draft.title.trim(), description: draft.description.trim(),
        price_cents: cents, currency: draft.currency, status: draft.publish ? "published" : "draft" } });
      view.navigate(`/studio/series/${encodeURIComponent(series.series_id)}`);
      return;
    } catch (error) {
      createError = error.code === "series_exists" ? `The address ${draft.series_id} is taken; choose another.` : describe(error);
    }
    busy = false;
    draw();
  }

  draw();
  return null;
}
