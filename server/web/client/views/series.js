// A series: its episodes in order (poster, title, length, free previews marked) and, for a viewer who
// has not bought it, the paywall. A test purchase unlocks the page where it stands, without a reload.
import { html, nothing } from "lit-html";
import { api } from "../api.js";
import { config } from "../config.js";
import { clock, plural, price, spoken, total } from "../format.js";
import { describe } from "../messages.js";
import { session } from "../session.js";
import { badge, loading, poster } from "./common.js";

export async function seriesPage(view) {
  const [seriesId] = view.params;
  view.title("Series");
  view.show(loading("Loading the series…"));
  const path = `/v1/series/${encodeURIComponent(seriesId)}`;
  let [series, paywall] = await Promise.all([api(path), api(`${path}/paywall`)]);
  let buying = false, notice = "", noticeKind = "";

  const draw = () => {
    const owned = paywall.is_owned === true;
    view.title(series.title);
    view.show(html`
      <article class="series" aria-labelledby="series-title">
        <header class="series-header">
          ${poster(series.cover?.poster_url, series.title)}
          <div>
            <h1 id="series-title" tabindex="-1">${series.title}</h1>
            <p class="creator">by ${series.creator_id}</p>
            <p class="meta">
              <span>${plural(series.episode_count, "episode")}</span>
              <span>${total(series.total_duration_s)}</span>
              ${owned ? badge("Yours", "owned") : html`<span class="price">${price(series.price_cents, series.currency)}</span>`}
            </p>
            ${series.description ? html`<p class="description">${series.description}</p>` : nothing}
          </div>
        </header>
        ${owned ? nothing : paywallBox()}
        <p class=${`notice ${noticeKind}`} role="status" aria-live="polite">${notice}</p>
        <h2>Episodes</h2>
        <ol class="episodes">
          ${series.episodes.map((episode) => {
            const open = owned || episode.is_free_preview;
            return html`
            <li class=${`episode${open ? "" : " locked"}`}>
              <a href=${`${path.replace("/v1", "")}/episodes/${encodeURIComponent(episode.episode_id)}`}
                 aria-label=${`${episode.position}. ${episode.title || `Episode ${episode.episode_id}`}, ${spoken(episode.duration_s)}${episode.is_free_preview ? ", free preview" : ""}${open ? "" : ", locked"}`}>
                ${poster(episode.poster_url, episode.title || episode.episode_id)}
                <span class="episode-title">${episode.position}. ${episode.title || `Episode ${episode.episode_id}`}</span>
                <span class="episode-meta">
                  <span>${clock(episode.duration_s)}</span>
                  ${episode.is_free_preview ? badge("Free preview", "free") : nothing}
                  ${open ? nothing : badge("Locked", "locked")}
                </span>
              </a>
            </li>`;
          })}
        </ol>
      </article>`);
  };

  const paywallBox = () => html`
    <section class="paywall" aria-labelledby="paywall-title">
      <h2 id="paywall-title">Buy ${series.title}</h2>
      <p>All ${plural(series.episode_count, "episode")}, including those added later, for
        <strong class="price">${price(paywall.price.amount_cents, paywall.price.currency)}</strong>.
        ${paywall.free_previews.length ? html`${plural(paywall.free_previews.length, "episode")} free to watch.` : nothing}</p>
      ${!paywall.is_for_sale ? html`<p>This series is not for sale at the moment.</p>`
        : !session.isSignedIn ? html`<p>Sign in to buy it.</p>`
        : config.test_payments ? html`
          <div class="test-mode">
            <p><span class="badge test">Test mode</span> No money moves: this sends the payment system's signed
              purchase webhook to this service, which records it like a real payment.</p>
            <button type="button" class="buy" ?disabled=${buying} @click=${buy}>
              ${buying ? "Buying…" : `Test purchase for ${price(paywall.price.amount_cents, paywall.price.currency)}`}
            </button>
          </div>`
        : html`<p>Buy it in the app where you have your account; this page unlocks once the payment is through.</p>`}
    </section>`;

  async function buy() {
    buying = true;
    notice = "";
    draw();
    try {
      const outcome = await api("/v1/test-payments", { method: "POST", body: { series_id: series.series_id } });
      if (outcome.result === "refused") throw Object.assign(new Error(outcome.detail), { code: outcome.code, detail: outcome.detail });
      [series, paywall] = await Promise.all([api(path), api(`${path}/paywall`)]);
      notice = paywall.is_owned ? `Purchased: every episode of ${series.title} is yours.` : "The payment went through, but the series is not unlocked yet; reload in a moment.";
      noticeKind = paywall.is_owned ? "success" : "";
      view.announce(notice);
    } catch (error) {
      notice = `The purchase did not go through. ${describe(error)}`;
      noticeKind = "error";
    }
    buying = false;
    draw();
  }

  draw();
}
