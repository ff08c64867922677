// The storefront: every published series with its poster, title, creator, price, episodes and length.
import { html } from "lit-html";
import { api } from "../api.js";
import { plural, price, total } from "../format.js";
import { loading, poster } from "./common.js";

export async function storefront(view) {
  view.title("Series");
  view.show(loading("Loading series…"));
  const page = await api("/v1/series?limit=50");
  view.show(html`
    <section class="storefront" aria-labelledby="storefront-title">
      <h1 id="storefront-title" tabindex="-1">Series</h1>
      ${page.series.length === 0 ? html`<p class="notice">No series is for sale yet.</p>` : html`
      <ul class="cards">
        ${page.series.map((series) => html`
          <li class="card">
            <a href=${`/series/${encodeURIComponent(series.series_id)}`} class="card-link">
              ${poster(series.cover?.poster_url, series.title)}
              <h2 class="card-title">${series.title}</h2>
            </a>
            <p class="creator">by ${series.creator_id}</p>
            <p class="meta">
              <span class="price">${price(series.price_cents, series.currency)}</span>
              <span>${plural(series.episode_count, "episode")}</span>
              <span>${total(series.total_duration_s)}</span>
            </p>
          </li>`)}
      </ul>`}
    </section>`);
}
